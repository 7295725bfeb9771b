"""A throwaway virtual environment that sees this one's packages: does my plugin package install?

Installing a package into a fresh environment with torch and fusioncore
from the index takes minutes; a :class:`PluginVenv` takes a fraction of a
second. It is created without pip, and a ``.pth`` file in its
site-packages adds the running interpreter's site-packages after its own
(``site.addsitedir``, so editable installs there keep working). fusioncore,
torch, pip and setuptools are then importable inside, while whatever is
installed into the new environment -- with ``pip install --no-deps
--no-build-isolation -e``, no network needed -- stays there::

    env = PluginVenv.create(tmp_path / "venv")
    env.install(Path("docs/examples/fusioncore-iat"))
    print(env.fusioncore("plugins", "--json").stdout)
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import os
import re
import shutil
import subprocess
import sysconfig
import venv
from pathlib import Path

import attrs

from fusioncore.errors import FusionCoreError

__all__ = ["PackageInstallError", "PluginVenv", "editable_install_problem"]

_IGNORE = shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", ".pytest_cache")


class PackageInstallError(FusionCoreError):
    """A package could not be installed into a :class:`PluginVenv` (pip's output attached)."""


def editable_install_problem() -> str | None:
    """Why an offline editable install cannot work in this environment, or ``None`` if it can."""
    if importlib.util.find_spec("pip") is None:
        return "pip is not importable in this environment"
    if importlib.util.find_spec("setuptools") is None:
        return "setuptools is not importable in this environment"
    # read the version from metadata: importing setuptools after distutils was imported breaks it
    found = md.version("setuptools")
    version = tuple(int(p) for p in re.findall(r"\d+", found)[:2])
    if version < (64, 0):
        return f"setuptools {found} predates editable wheels (PEP 660); need >= 64"
    if version < (70, 1) and importlib.util.find_spec("wheel") is None:
        return f"setuptools {found} needs the 'wheel' package for editable installs (or >= 70.1)"
    return None


@attrs.frozen
class PluginVenv:
    """A virtual environment layered over the running one (see the module docstring)."""

    root: Path = attrs.field(converter=Path)

    @property
    def python(self) -> Path:
        return self.root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")

    @classmethod
    def create(cls, root: Path) -> PluginVenv:
        """Make the environment at ``root`` (which must not exist yet) and link in our packages."""
        env = cls(root)
        venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(env.root)
        own = env.run("-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
        parents = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
        lines = "".join(f"import site; site.addsitedir({p!r})\n" for p in parents)
        (Path(own) / "_fusioncore_parent_env.pth").write_text(lines)
        return env

    def environ(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "VIRTUAL_ENV")}
        env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONNOUSERSITE="1")
        env.update(extra or {})
        return env

    def run(
        self,
        *args: str,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 600,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """``python *args`` inside the environment; with ``check``, a failure raises with its output."""
        result = subprocess.run(
            [str(self.python), *args],
            cwd=cwd,
            env=self.environ(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise PackageInstallError(
                f"`python {' '.join(args)}` exited with {result.returncode} in {self.root}:\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )
        return result

    def install(self, package: Path) -> Path:
        """Copy ``package`` (a folder with a pyproject.toml) beside the environment and install it editable.

        The copy keeps build leftovers (``*.egg-info``) out of the source
        tree; returns the copy's path, where its tests can run.
        """
        package = Path(package)
        if not (package / "pyproject.toml").is_file():
            raise PackageInstallError(f"{package} has no pyproject.toml")
        target = self.root.parent / "packages" / package.name
        shutil.copytree(package, target, ignore=_IGNORE)
        self.run(
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-e",
            str(target),
            cwd=self.root.parent,
        )
        return target

    def fusioncore(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """The ``fusioncore`` command line inside the environment."""
        return self.run("-m", "fusioncore", *args, env=env, timeout=timeout, check=check)

    def pytest(
        self, *args: str, cwd: Path, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``python -m pytest`` in ``cwd`` inside the environment."""
        return self.run(
            "-m", "pytest", "-p", "no:cacheprovider", *args, cwd=cwd, timeout=timeout, check=check
        )
