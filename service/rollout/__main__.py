"""python -m service.rollout MODEL ...: show, write or remove a model's rollout policy.

    python -m service.rollout sentiment-imdb --stable 3 --candidate 4 --mode shadow --weight 0.5
    python -m service.rollout sentiment-imdb --mode canary --weight 0.1
    python -m service.rollout sentiment-imdb --promote
    python -m service.rollout sentiment-imdb            # show the policy

The policy is checked against the versions on disk before it is written; the write is refused
when the policy changed since it was read (a service process rolled the candidate back, say):
run the command again to decide on the new state.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from contract.layout import list_versions
from service.rollout.policy import Gates, Policy, PolicyError, PolicyStore
from service.settings import Settings


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    artifacts: Path = args.artifacts_dir
    store = PolicyStore(args.rollout_dir or artifacts)
    on_disk = list_versions(artifacts / args.model)
    try:
        if not on_disk:
            raise PolicyError(f"{artifacts / args.model}: no versions of {args.model!r} on disk "
                              "(set --artifacts-dir or SERVICE_ARTIFACTS_DIR)")
        try:
            current = store.read(args.model)
        except PolicyError as exc:
            if not _changes(args):
                raise
            print(f"replacing an unusable policy: {exc}", file=sys.stderr)
            current = None
        if args.remove:
            if current is None:
                raise PolicyError(f"{args.model} has no rollout policy to remove")
            store.remove(args.model, current.revision)
            print(f"removed {store.path(args.model)}: the newest loaded version serves {args.model} again")
            return 0
        if not _changes(args):
            print(current.to_json() if current else f"{args.model} has no rollout policy: the newest version serves",
                  end="" if current else "\n")
            return 0
        policy = _next_policy(args, current, on_disk)
        missing = sorted(policy.versions() - set(on_disk))
        if missing:
            raise PolicyError(f"version {', '.join(map(str, missing))} of {args.model!r} is not on disk "
                              f"(on disk: {', '.join(map(str, on_disk))})")
        written = store.write(policy, current.revision if current else None)
    except PolicyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if current is not None and current.rollback is not None and written.rollback is None:
        print(f"note: the rollback of candidate {current.rollback.candidate} ({current.rollback.reason}) is cleared",
              file=sys.stderr)
    print(f"wrote {store.path(args.model)} (revision {written.revision}):")
    print(written.to_json(), end="")
    return 0


def _changes(args: argparse.Namespace) -> bool:
    return any(value is not None for value in (args.stable, args.candidate, args.mode, args.weight, args.advance_after,
                                               args.canary_weight, args.promote_after)) \
        or bool(args.gate) or args.promote or args.remove


def _next_policy(args: argparse.Namespace, current: Policy | None, on_disk: list[int]) -> Policy:
    if args.promote:
        if current is None:
            raise PolicyError(f"{args.model} has no rollout policy, so no candidate to promote")
        return current.promoted()
    fields: dict[str, Any] = current.model_dump() if current else {"model": args.model, "stable": on_disk[-1]}
    for name in ("stable", "candidate", "mode", "weight"):
        value = getattr(args, name)
        if value is not None:
            fields[name] = value
    if args.candidate == 0:  # --candidate 0: no candidate
        fields["candidate"] = None
    if args.gate:
        fields["gates"] = {**fields.get("gates", {}), **dict(_gate(item) for item in args.gate)}
    promotion = {"advance_after": args.advance_after, "canary_weight": args.canary_weight,
                 "promote_after": args.promote_after}
    fields["promotion"] = {**fields.get("promotion", {}), **{k: v for k, v in promotion.items() if v is not None}}
    fields["rollback"] = None  # a person deciding again clears the record of the last rollback
    fields["updated_by"] = ""
    try:
        return Policy.model_validate(fields)
    except ValidationError as exc:
        raise PolicyError("; ".join(_message(error) for error in exc.errors())) from None


def _gate(item: str) -> tuple[str, float | None]:
    name, equals, value = item.partition("=")
    if not equals or name not in Gates.model_fields:
        raise PolicyError(f"--gate {item!r}: expected NAME=VALUE with NAME one of {', '.join(Gates.model_fields)}")
    if value == "off":
        return name, None
    try:
        return name, float(value)
    except ValueError:
        raise PolicyError(f"--gate {item!r}: {value!r} is not a number (or 'off')") from None


def _message(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"].removeprefix("Value error, ")


def _parser() -> argparse.ArgumentParser:
    settings = Settings()  # the service's own defaults: SERVICE_ARTIFACTS_DIR, SERVICE_ROLLOUT_DIR
    parser = argparse.ArgumentParser(prog="python -m service.rollout", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="the model's folder name, e.g. sentiment-imdb")
    parser.add_argument("--stable", type=int, help="the version unpinned requests get")
    parser.add_argument("--candidate", type=int, help="the version tried (0: none)")
    parser.add_argument("--mode", choices=("shadow", "canary", "off"), help="how the candidate takes traffic")
    parser.add_argument("--weight", type=float, help="the candidate's share of unpinned requests (0..1)")
    parser.add_argument("--promote", action="store_true", help="make the candidate stable and clear it")
    parser.add_argument("--advance-after", type=int, help="shadow copies, all gates passing, before canary")
    parser.add_argument("--canary-weight", type=float, help="the canary's share after an automatic advance")
    parser.add_argument("--promote-after", type=int, help="canary requests, all gates passing, before promotion")
    parser.add_argument("--gate", action="append", metavar="NAME=VALUE",
                        help=f"set a gate's limit, or 'off' ({', '.join(Gates.model_fields)}); repeatable")
    parser.add_argument("--remove", action="store_true", help="delete the policy: the newest version serves again")
    parser.add_argument("--artifacts-dir", type=Path, default=settings.artifacts_dir)
    parser.add_argument("--rollout-dir", type=Path, default=settings.rollout_dir,
                        help="where the policies are (default: the artifacts folder)")
    return parser


if __name__ == "__main__":
    sys.exit(main())
