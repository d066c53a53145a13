// Starts Swagger UI on the service's own OpenAPI document. The API key entered under
// "Authorize" is kept in this browser (persistAuthorization) so it survives reloads.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    displayRequestDuration: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
