"""The service's ``neurofab`` subcommands: ``serve``, ``worker``, ``accounts`` and ``remote``.

``neurofab.cli`` calls :func:`register` with its subparsers. Every command takes
``--data DIR`` (default ``$NEUROFAB_DATA``, else ``./data``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

__all__ = ["register"]


def _data_arg(parser) -> None:
    parser.add_argument(
        "--data", metavar="DIR", default=None, help="data directory (default: $NEUROFAB_DATA, else ./data)"
    )


def _default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 4))


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")


def cmd_serve(args) -> int:
    from .supervisor import Supervisor, SupervisorOptions

    _logging()
    options = SupervisorOptions(
        data_dir=args.data,
        host=args.host,
        port=args.port,
        serve_http=True,
        http_workers=args.http_workers,
        threads=args.threads,
        job_workers=args.workers,
        backends=args.backend or [],
        backend_modules=args.backend_module,
        access_log=args.access_log,
    )
    supervisor = Supervisor(options)
    print(
        f"neurofab: serving http://{args.host}:{args.port} (docs at /docs) "
        f"with {args.workers} job worker(s), "
        f"data in {supervisor.settings.data_dir}",
        file=sys.stderr,
    )
    return supervisor.run()


def cmd_worker(args) -> int:
    from .supervisor import Supervisor, SupervisorOptions

    _logging()
    options = SupervisorOptions(
        data_dir=args.data,
        serve_http=False,
        job_workers=args.workers,
        backends=args.backend or [],
        backend_modules=args.backend_module,
    )
    return Supervisor(options).run()


def _database(args):
    from .config import Settings

    settings = Settings.load({"DATA_DIR": args.data})
    db = settings.database()
    db.initialise()
    return settings, db


def _show_key(key: str) -> None:
    print(key)
    print("(shown once: the service stores only its hash)", file=sys.stderr)


def _when(timestamp) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(timestamp)) if timestamp else "-"


def cmd_accounts(args) -> int:
    from neurofab.errors import ValidationError

    from . import accounts
    from .errors import ApiError

    settings, db = _database(args)
    action = args.action
    try:
        if action == "list":
            rows = accounts.list_accounts(db)
            print(f"{'email':32} {'tier':11} {'jobs today':>10}  {'created (UTC)':16}  keys")
            for r in rows:
                print(
                    f"{r['email']:32} {r['tier']:11} {r['jobs_today'] or 0:>10}  "
                    f"{_when(r['created_at']):16}  "
                    f"{(r['keys'] or '(none)').replace(' ', ', ')}..."
                )
        elif action == "create":
            email = accounts.normalise_email(args.email)
            _check_tier(settings, args.tier)
            _, key = accounts.create_account(db, email, args.tier, approved_by="operator")
            _show_key(key)
        elif action == "set-tier":
            _check_tier(settings, args.tier)
            account = accounts.set_tier(db, accounts.normalise_email(args.email), args.tier)
            print(f"{account.email} is now on the {account.tier} tier")
        elif action == "approve":
            if args.tier is not None:
                _check_tier(settings, args.tier)
            account, key = accounts.approve(db, accounts.normalise_email(args.email), args.tier)
            print(f"{account.email} approved for the {account.tier} tier", file=sys.stderr)
            if key is not None:
                _show_key(key)
        elif action == "requests":
            for r in accounts.tier_requests(db):
                print(f"{r['email']:32} {r['tier']:11} requested {_when(r['requested_at'])}")
        elif action == "rotate-key":
            _show_key(accounts.rotate_key(db, accounts.normalise_email(args.email)))
        elif action == "revoke":
            n = accounts.revoke_keys(db, accounts.normalise_email(args.email))
            print(f"revoked {n} key(s) of {args.email}")
        elif action == "admin-token":
            print(settings.admin_token)
        elif action == "tiers":
            print(
                json.dumps(
                    {
                        name: {k: v for k, v in vars(t).items() if k != "name"}
                        for name, t in settings.tiers.items()
                    },
                    indent=2,
                )
            )
    except (LookupError, ValidationError) as e:
        print(f"neurofab: error: {e.args[0] if isinstance(e, LookupError) else e}", file=sys.stderr)
        return 2
    except ApiError as e:
        print(f"neurofab: error: {e.detail}", file=sys.stderr)
        return 2
    return 0


def _check_tier(settings, tier: str) -> None:
    from neurofab.errors import ValidationError

    if tier not in settings.tiers:
        raise ValidationError("tier", f"must be one of {', '.join(settings.tiers)}, not {tier!r}")


def cmd_remote(args) -> int:
    """Run a network and job on a service through the SDK (like ``simulate``, remotely)."""
    import catalyst_cloud as cc
    from neurofab.cli import _load_json, _write_json

    client = cc.Client(args.api_key or os.environ.get("CATALYST_API_KEY", ""), base_url=args.url)
    network = _load_json(args.network, "network")
    job = _load_json(args.job, "job")
    try:
        net = client.create_network(
            network.get("populations"), network.get("connections"), seed=network.get("seed")
        )
        done = client.simulate(
            net["network_id"],
            job.get("timesteps"),
            job.get("stimuli"),
            job.get("learning"),
            job.get("rewards"),
            seed=job.get("seed"),
            max_wait=args.max_wait,
        )
    except cc.CatalystCloudError as e:
        print(f"neurofab: error: {e}", file=sys.stderr)
        return 1
    if args.output:
        _write_json(args.output, done)
    else:
        json.dump(done, sys.stdout)
        sys.stdout.write("\n")
    if args.spikes:
        _write_json(args.spikes, client.get_spikes(done["job_id"]))
    if args.raster:
        with open(args.raster, "wb") as f:
            f.write(client.get_raster(done["job_id"]))
    return 0


def register(subparsers) -> None:
    """Add ``serve``, ``worker``, ``accounts`` and ``remote`` to the ``neurofab`` command."""
    p = subparsers.add_parser("serve", help="run the REST service (granian) and its job workers")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--workers",
        type=int,
        default=_default_workers(),
        metavar="N",
        help=f"job worker processes (default {_default_workers()})",
    )
    p.add_argument("--http-workers", type=int, default=2, metavar="N", help="granian processes (default 2)")
    p.add_argument("--threads", type=int, default=32, help="threads per granian process (default 32)")
    p.add_argument("--backend", action="append", help="backends the job workers serve (default: emulator)")
    p.add_argument("--backend-module", action="append", default=[], help="module that registers a backend")
    p.add_argument("--access-log", action="store_true", help="log every request")
    _data_arg(p)
    p.set_defaults(func=cmd_serve)

    p = subparsers.add_parser("worker", help="run job workers only (next to a `neurofab serve` elsewhere)")
    p.add_argument(
        "--workers",
        type=int,
        default=_default_workers(),
        metavar="N",
        help=f"worker processes (default {_default_workers()})",
    )
    p.add_argument("--backend", action="append", help="serve jobs of this backend (default: emulator)")
    p.add_argument("--backend-module", action="append", default=[], help="module that registers a backend")
    _data_arg(p)
    p.set_defaults(func=cmd_worker)

    p = subparsers.add_parser("accounts", help="manage accounts, tiers and API keys")
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("list", help="every account, its tier, today's jobs and key prefixes")
    _data_arg(a)
    a = actions.add_parser("create", help="create an account (any tier) and print its key")
    a.add_argument("email")
    a.add_argument("--tier", default="free")
    _data_arg(a)
    a = actions.add_parser("set-tier", help="move an account to another tier")
    a.add_argument("email")
    a.add_argument("tier")
    _data_arg(a)
    a = actions.add_parser("requests", help="paid-tier sign-ups waiting for approval")
    _data_arg(a)
    a = actions.add_parser("approve", help="grant a requested paid tier (creates the account if needed)")
    a.add_argument("email")
    a.add_argument("--tier", help="tier to grant (default: the one requested)")
    _data_arg(a)
    a = actions.add_parser("rotate-key", help="revoke an account's keys and print a new one")
    a.add_argument("email")
    _data_arg(a)
    a = actions.add_parser("revoke", help="revoke every key of an account")
    a.add_argument("email")
    _data_arg(a)
    a = actions.add_parser("admin-token", help="print the operator token (X-Admin-Token for paid sign-ups)")
    _data_arg(a)
    a = actions.add_parser("tiers", help="print the tier table in force")
    _data_arg(a)
    p.set_defaults(func=cmd_accounts)

    p = subparsers.add_parser(
        "remote", help="run a network and job on a NeuroFab/Catalyst service via the SDK"
    )
    p.add_argument("network", help="a POST /v1/networks body (JSON file)")
    p.add_argument("job", help="a POST /v1/jobs body without network_id (JSON file)")
    p.add_argument(
        "--url", default=None, help="service URL (default: $CATALYST_API_URL, else localhost:8000)"
    )
    p.add_argument("--api-key", default=None, help="API key (default: $CATALYST_API_KEY)")
    p.add_argument("--max-wait", type=float, default=300.0, help="seconds to wait for the job (default 300)")
    p.add_argument("-o", "--output", help="write the completed job here")
    p.add_argument("--spikes", help="write the spike trains here")
    p.add_argument("--raster", help="write the raster PNG here")
    p.set_defaults(func=cmd_remote)
