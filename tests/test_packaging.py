"""setup.cfg lists every package folder, so an installed baas (not just a checkout) has all of its code."""
from __future__ import annotations

import configparser
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Folder in the checkout -> import name once installed (see package_dir in setup.cfg).
ROOTS = {"baas": "baas", "cli": "baas_cli", "plugins": "baas_plugins"}


def setup_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    return parser


def listed_packages() -> set[str]:
    return {line.strip() for line in setup_cfg()["options"]["packages"].splitlines() if line.strip()}


def package_folders() -> dict[str, Path]:
    found = {}
    for folder, import_name in ROOTS.items():
        root = REPO / folder
        for init in root.rglob("__init__.py"):
            relative = init.parent.relative_to(root)
            if any(part.startswith(".") or part == "__pycache__" for part in relative.parts):
                continue
            found[".".join((import_name, *relative.parts))] = init.parent
    return found


def test_every_package_folder_is_listed_in_setup_cfg():
    missing = sorted(set(package_folders()) - listed_packages())
    assert not missing, f"add these to [options] packages in setup.cfg: {missing}"


def test_every_listed_package_exists():
    stale = sorted(listed_packages() - set(package_folders()))
    assert not stale, f"setup.cfg lists packages without a folder and __init__.py: {stale}"


def test_package_dir_maps_the_cli_and_plugins_folders():
    mapping = {}
    for line in setup_cfg()["options"]["package_dir"].splitlines():
        if "=" in line:
            name, folder = (part.strip() for part in line.split("=", 1))
            mapping[name] = folder
    assert mapping == {"baas_cli": "cli", "baas_plugins": "plugins"}


def test_console_script_points_at_the_cli():
    scripts = setup_cfg()["options.entry_points"]["console_scripts"]
    assert "baas = baas_cli.main:main" in scripts
