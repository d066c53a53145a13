"""The OpenAPI 3.1 description of the service, served at ``/openapi.json``.

The request bodies of ``POST /v1/networks`` and ``POST /v1/jobs`` are the JSON Schemas
that :mod:`neurofab.schema` derives from the same field tables the validators use, so
the documentation and the validation cannot drift apart. Response schemas describe
exactly what :mod:`.api` returns (schemathesis checks every response against them).
"""

from __future__ import annotations

import copy
import functools

import neurofab

from .tiers import TIER_NAMES

__all__ = ["openapi_document"]


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERROR = _json(_ref("Error"), "")


def _error(description: str, headers: dict | None = None) -> dict:
    response = copy.deepcopy(_ERROR)
    response["description"] = description
    if headers:
        response["headers"] = headers
    return response


_E400 = _error("Invalid request: the body is not JSON, or a field is invalid (the detail names it).")
_E401 = _error("Missing or invalid API key.")
_E403 = _error("Tier limit exceeded (the detail names the limit).")
_E404 = _error("No such network or job for this account.")
_E409 = _error("Conflict with the resource's state (the detail says which).")
_E413 = _error("Request body larger than the service accepts.")
_E429 = _error(
    "Daily job limit reached.",
    {
        "Retry-After": {
            "description": "Seconds until the limit resets (next UTC midnight).",
            "schema": {"type": "integer", "minimum": 1},
        },
    },
)
_E503 = _error("No enabled backend can run the job.")

_JOB_ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "A job id, `job_...`.",
}
_NETWORK_ID = {
    "name": "network_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "A network id, `net_...`.",
}
_KEYED = [{"ApiKey": []}]


def _request_schema(schema: dict) -> dict:
    schema = copy.deepcopy(schema)
    schema.pop("$schema", None)  # OpenAPI 3.1 schema objects are 2020-12 already
    return schema


def _components() -> dict:
    from neurofab.schema import job_json_schema, network_json_schema

    number = {"type": "number"}
    timestamp = {"type": "string", "format": "date-time"}
    return {
        "securitySchemes": {
            "ApiKey": {
                "type": "apiKey",
                "in": "header",
                "name": "X-API-Key",
                "description": "The key from POST /v1/signup (`cn_live_...`).",
            },
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["detail"],
                "properties": {
                    "detail": {"type": "string", "description": "What went wrong, naming the field."}
                },
            },
            "Signup": {
                "type": "object",
                "required": ["email"],
                "additionalProperties": False,
                "properties": {
                    "email": {
                        "type": "string",
                        "format": "email",
                        "pattern": "^[^@\\s]+@[^@\\s]+\\.[^@\\s.]+$",
                        "maxLength": 254,
                        "description": "Your email address (one account each; case does not matter).",
                    },
                    "tier": {
                        "type": ["string", "null"],
                        "enum": [*TIER_NAMES, None],
                        "default": "free",
                        "description": "Paid tiers need the operator's approval (X-Admin-Token).",
                    },
                },
            },
            "Limits": {
                "type": "object",
                "required": [
                    "max_neurons",
                    "max_timesteps",
                    "max_synapses",
                    "max_jobs_per_day",
                    "max_runtime_seconds",
                ],
                "properties": {
                    "max_neurons": {"type": "integer"},
                    "max_timesteps": {"type": "integer"},
                    "max_synapses": {"type": "integer"},
                    "max_jobs_per_day": {"type": ["integer", "null"], "description": "null: unlimited"},
                    "max_runtime_seconds": number,
                },
            },
            "Account": {
                "type": "object",
                "required": ["api_key", "tier", "limits"],
                "properties": {
                    "api_key": {
                        "type": "string",
                        "pattern": "^cn_live_",
                        "description": "Shown once; the service keeps only its hash.",
                    },
                    "tier": {"type": "string", "enum": list(TIER_NAMES)},
                    "limits": _ref("Limits"),
                },
            },
            "Usage": {
                "type": "object",
                "required": [
                    "jobs_today",
                    "jobs_limit_today",
                    "compute_seconds_this_month",
                    "estimated_cost_gbp",
                ],
                "properties": {
                    "jobs_today": {"type": "integer", "description": "Jobs accepted today (UTC)."},
                    "jobs_limit_today": {"type": ["integer", "null"], "description": "null: unlimited."},
                    "compute_seconds_this_month": number,
                    "estimated_cost_gbp": number,
                    "tier": {"type": "string", "enum": list(TIER_NAMES)},
                },
            },
            "Network": _request_schema(network_json_schema()),
            "NetworkCreated": {
                "type": "object",
                "required": ["network_id", "total_neurons", "populations", "connections"],
                "properties": {
                    "network_id": {"type": "string", "pattern": "^net_"},
                    "total_neurons": {"type": "integer"},
                    "populations": {"type": "integer", "description": "Number of populations."},
                    "connections": {"type": "integer", "description": "Number of connections."},
                    "seed": {"type": "integer", "description": "The topology seed (drawn if not given)."},
                },
            },
            "NetworkInfo": {
                "type": "object",
                "required": [
                    "network_id",
                    "total_neurons",
                    "populations",
                    "connections",
                    "seed",
                    "definition",
                ],
                "properties": {
                    "network_id": {"type": "string"},
                    "created_at": timestamp,
                    "total_neurons": {"type": "integer"},
                    "populations": {"type": "integer"},
                    "connections": {"type": "integer"},
                    "expected_synapses": number,
                    "seed": {"type": "integer"},
                    "definition": {
                        "type": "object",
                        "description": "The stored network, defaults filled in.",
                    },
                },
            },
            "Synapse": {
                "type": "object",
                "required": [
                    "connection",
                    "source",
                    "source_index",
                    "target",
                    "target_index",
                    "weight",
                    "delay",
                    "compartment",
                ],
                "properties": {
                    "connection": {"type": "integer"},
                    "source": {"type": "string"},
                    "source_index": {"type": "integer"},
                    "target": {"type": "string"},
                    "target_index": {"type": "integer"},
                    "weight": {"type": "integer"},
                    "delay": {"type": "integer"},
                    "compartment": {"type": "integer"},
                },
            },
            "SynapsePage": {
                "type": "object",
                "required": ["total", "offset", "limit", "next_offset", "synapses"],
                "properties": {
                    "network_id": {"type": "string"},
                    "total": {"type": "integer"},
                    "offset": {"type": "integer"},
                    "limit": {"type": "integer"},
                    "next_offset": {"type": ["integer", "null"]},
                    "synapses": {"type": "array", "items": _ref("Synapse")},
                },
            },
            "Job": _request_schema(job_json_schema()),
            "JobAccepted": {
                "type": "object",
                "required": ["job_id", "status"],
                "properties": {
                    "job_id": {"type": "string", "pattern": "^job_"},
                    "status": {
                        "type": "string",
                        "enum": ["queued", "running", "completed", "failed", "cancelled"],
                        "description": "queued; a repeated Idempotency-Key reports the job's status now",
                    },
                },
            },
            "Result": {
                "type": "object",
                "required": ["total_spikes", "firing_rates", "spike_count_timeseries"],
                "properties": {
                    "total_spikes": {"type": "integer"},
                    "firing_rates": {
                        "type": "object",
                        "additionalProperties": number,
                        "description": "Per population: spikes per neuron per timestep.",
                    },
                    "spike_count_timeseries": {"type": "array", "items": {"type": "integer"}},
                },
            },
            "Provenance": {
                "type": "object",
                "required": [
                    "model_version",
                    "package_version",
                    "backend",
                    "core_preset",
                    "image_hash",
                    "network_seed",
                    "job_seed",
                ],
                "properties": {
                    "model_version": {"type": "integer"},
                    "package_version": {"type": "string"},
                    "backend": {"type": "string", "description": "emulator, rtl, board, ..."},
                    "core_preset": {"type": ["string", "null"]},
                    "image_hash": {"type": "string"},
                    "network_seed": {"type": "integer"},
                    "job_seed": {"type": "integer"},
                    "attempt": {"type": "integer"},
                },
            },
            "JobStatus": {
                "type": "object",
                "required": ["job_id", "network_id", "status", "timesteps", "created_at"],
                "properties": {
                    "job_id": {"type": "string"},
                    "network_id": {"type": "string"},
                    "status": {
                        "type": "string",
                        "enum": ["queued", "running", "completed", "failed", "cancelled"],
                    },
                    "timesteps": {"type": "integer"},
                    "created_at": timestamp,
                    "started_at": timestamp,
                    "finished_at": timestamp,
                    "progress": {
                        "type": "number",
                        "minimum": 0,
                        "maximum": 1,
                        "description": "While running: fraction of timesteps done.",
                    },
                    "error_message": {"type": ["string", "null"], "description": "When failed: why."},
                    "compute_seconds": number,
                    "provenance": _ref("Provenance"),
                    "result": _ref("Result"),
                },
            },
            "JobList": {
                "type": "object",
                "required": ["jobs", "next_cursor"],
                "properties": {
                    "jobs": {"type": "array", "items": _ref("JobStatus")},
                    "next_cursor": {"type": ["string", "null"]},
                },
            },
            "SpikeTrains": {
                "type": "object",
                "required": ["spike_trains"],
                "properties": {
                    "spike_trains": {
                        "type": "object",
                        "description": "population label -> local neuron index (string) -> spike times",
                        "additionalProperties": {
                            "type": "object",
                            "additionalProperties": {"type": "array", "items": {"type": "integer"}},
                        },
                    }
                },
            },
            "Weights": {
                "type": "object",
                "required": ["connections"],
                "properties": {
                    "connections": {
                        "type": "array",
                        "description": "One list per connection, in synapse order.",
                        "items": {"type": "array", "items": {"type": "integer"}},
                    }
                },
            },
            "Health": {
                "type": "object",
                "required": ["status", "version", "workers", "queued", "running"],
                "properties": {
                    "status": {"type": "string"},
                    "version": {"type": "string"},
                    "model_version": {"type": "integer"},
                    "backends": {"type": "array", "items": {"type": "string"}},
                    "workers": {"type": "integer"},
                    "queued": {"type": "integer"},
                    "running": {"type": "integer"},
                },
            },
        },
    }


def _linked(response: dict, links: dict) -> dict:
    """A response with OpenAPI links: which later calls take ids from its body."""
    return {**response, "links": links}


def _idempotency_header() -> dict:
    return {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
        "description": "Repeat a request safely: the first result under this key is returned again.",
    }


def _query(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _paths() -> dict:
    results_errors = {"401": _E401, "404": _E404, "409": _error("The job has not completed.")}
    return {
        "/health": {
            "get": {
                "summary": "Service health",
                "operationId": "health",
                "tags": ["service"],
                "responses": {"200": _json(_ref("Health"), "The service is up.")},
            }
        },
        "/v1/signup": {
            "post": {
                "summary": "Create an account and get an API key",
                "operationId": "signup",
                "tags": ["accounts"],
                "parameters": [
                    {
                        "name": "X-Admin-Token",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "The operator's token: allows signing up for a paid tier.",
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("Signup")}},
                },
                "responses": {
                    "201": _json(_ref("Account"), "Account created; the key is shown only now."),
                    "400": _E400,
                    "403": _error("The tier needs the operator's approval."),
                    "409": _error("Email already registered."),
                    "413": _E413,
                },
            }
        },
        "/v1/usage": {
            "get": {
                "summary": "Usage and estimated cost",
                "operationId": "usage",
                "tags": ["accounts"],
                "security": _KEYED,
                "responses": {"200": _json(_ref("Usage"), "Usage from the accounting."), "401": _E401},
            }
        },
        "/v1/networks": {
            "post": {
                "summary": "Store a network definition",
                "operationId": "createNetwork",
                "tags": ["networks"],
                "security": _KEYED,
                "parameters": [_idempotency_header()],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("Network")}},
                },
                "responses": {
                    "201": _linked(
                        _json(_ref("NetworkCreated"), "Stored."),
                        {
                            "getNetwork": {
                                "operationId": "getNetwork",
                                "parameters": {"network_id": "$response.body#/network_id"},
                            },
                            "getSynapses": {
                                "operationId": "getSynapses",
                                "parameters": {"network_id": "$response.body#/network_id"},
                            },
                            "submitJob": {
                                "operationId": "submitJob",
                                "requestBody": {"network_id": "$response.body#/network_id", "timesteps": 10},
                            },
                        },
                    ),
                    "400": _E400,
                    "401": _E401,
                    "403": _E403,
                    "413": _E413,
                },
            }
        },
        "/v1/networks/{network_id}": {
            "get": {
                "summary": "A stored network: definition, seed, counts",
                "operationId": "getNetwork",
                "tags": ["networks"],
                "security": _KEYED,
                "parameters": [_NETWORK_ID],
                "responses": {"200": _json(_ref("NetworkInfo"), "The network."), "401": _E401, "404": _E404},
            }
        },
        "/v1/networks/{network_id}/synapses": {
            "get": {
                "summary": "The expanded synapse list, paginated",
                "operationId": "getSynapses",
                "tags": ["networks"],
                "security": _KEYED,
                "parameters": [
                    _NETWORK_ID,
                    _query(
                        "offset",
                        {"type": "integer", "minimum": 0, "maximum": 2**63 - 1, "default": 0},
                        "First synapse.",
                    ),
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": 10000, "default": 1000},
                        "Synapses per page.",
                    ),
                ],
                "responses": {
                    "200": _json(_ref("SynapsePage"), "One page, in synapse order."),
                    "400": _E400,
                    "401": _E401,
                    "404": _E404,
                },
            }
        },
        "/v1/jobs": {
            "post": {
                "summary": "Submit a simulation job",
                "operationId": "submitJob",
                "tags": ["jobs"],
                "security": _KEYED,
                "parameters": [
                    _idempotency_header(),
                    _query(
                        "wait",
                        {"type": "number", "minimum": 0, "maximum": 30},
                        "Extension: hold the request until the job ends or this many seconds pass, "
                        "and answer with the job as GET /v1/jobs/{job_id} shows it.",
                    ),
                ],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Job")}}},
                "responses": {
                    "200": _json(_ref("JobStatus"), "With wait: the job ended within the wait."),
                    "202": _linked(
                        _json(
                            _ref("JobAccepted"),
                            "Queued; poll GET /v1/jobs/{job_id}. "
                            "With wait: the job (as GET shows it) had not ended.",
                        ),
                        {
                            op: {"operationId": op, "parameters": {"job_id": "$response.body#/job_id"}}
                            for op in ("getJob", "cancelJob", "getSpikes", "getWeights", "getRaster")
                        },
                    ),
                    "400": _E400,
                    "401": _E401,
                    "403": _E403,
                    "404": _E404,
                    "413": _E413,
                    "429": _E429,
                    "503": _E503,
                },
            },
            "get": {
                "summary": "This account's jobs, newest first",
                "operationId": "listJobs",
                "tags": ["jobs"],
                "security": _KEYED,
                "parameters": [
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
                        "Page size.",
                    ),
                    _query(
                        "cursor",
                        {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
                        "next_cursor of the previous page.",
                    ),
                    _query(
                        "status",
                        {"type": "string", "enum": ["queued", "running", "completed", "failed", "cancelled"]},
                        "Only jobs in this status.",
                    ),
                ],
                "responses": {"200": _json(_ref("JobList"), "One page."), "400": _E400, "401": _E401},
            },
        },
        "/v1/jobs/{job_id}": {
            "get": {
                "summary": "Job status and summary results",
                "operationId": "getJob",
                "tags": ["jobs"],
                "security": _KEYED,
                "parameters": [
                    _JOB_ID,
                    _query(
                        "wait",
                        {"type": "number", "minimum": 0, "maximum": 30},
                        "Hold the request until the job ends or this many seconds pass.",
                    ),
                ],
                "responses": {
                    "200": _json(_ref("JobStatus"), "The job."),
                    "400": _E400,
                    "401": _E401,
                    "404": _E404,
                },
            },
            "delete": {
                "summary": "Cancel a queued or running job",
                "operationId": "cancelJob",
                "tags": ["jobs"],
                "security": _KEYED,
                "parameters": [_JOB_ID],
                "responses": {
                    "200": _json(_ref("JobStatus"), "Cancelled."),
                    "401": _E401,
                    "404": _E404,
                    "409": _error("The job has already completed or failed."),
                },
            },
        },
        "/v1/jobs/{job_id}/spikes": {
            "get": {
                "summary": "Spike trains (streamed)",
                "operationId": "getSpikes",
                "tags": ["jobs"],
                "security": _KEYED,
                "parameters": [
                    _JOB_ID,
                    _query(
                        "population", {"type": "string"}, "Only these populations (comma-separated labels)."
                    ),
                    _query(
                        "neurons",
                        {"type": "string"},
                        "Only these local indices of the one population named, like 0,3,10-19.",
                    ),
                    _query("start", {"type": "integer", "minimum": 0}, "Only spikes at steps >= start."),
                    _query("stop", {"type": "integer", "minimum": 0}, "Only spikes at steps < stop."),
                ],
                "responses": {
                    "200": _json(_ref("SpikeTrains"), "Spike trains by population and local index."),
                    "400": _E400,
                    **results_errors,
                },
            }
        },
        "/v1/jobs/{job_id}/weights": {
            "get": {
                "summary": "Final synaptic weights (streamed)",
                "operationId": "getWeights",
                "tags": ["jobs"],
                "security": _KEYED,
                "parameters": [_JOB_ID],
                "responses": {
                    "200": _json(_ref("Weights"), "Weights per connection, in synapse order."),
                    **results_errors,
                },
            }
        },
        "/v1/jobs/{job_id}/raster.png": {
            "get": {
                "summary": "Raster plot with population rates",
                "operationId": "getRaster",
                "tags": ["jobs"],
                "security": _KEYED,
                "parameters": [_JOB_ID],
                "responses": {
                    "200": {
                        "description": "A PNG image.",
                        "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
                    },
                    **results_errors,
                },
            }
        },
    }


@functools.cache
def openapi_document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "NeuroFab (Catalyst Neuromorphic Cloud API)",
            "version": neurofab.__version__,
            "description": "Run spiking neural networks: store a network, submit jobs, read spikes. "
            "Wire-compatible with the Catalyst Neuromorphic Cloud API; see docs/api.md.",
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "tags": [{"name": n} for n in ("accounts", "networks", "jobs", "service")],
        "paths": _paths(),
        "components": _components(),
    }
