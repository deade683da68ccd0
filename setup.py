"""Builds the picoring Python module with CMake for pip (see pyproject.toml).

The one extension, picoring._picoring, is the CMake target picoring_python (python/CMakeLists.txt):
this runs the project's own CMake build in Release with only that target, for the interpreter
running pip, then copies the module where setuptools packs it.
"""

import os
import pathlib
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = pathlib.Path(__file__).resolve().parent


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build = pathlib.Path(self.build_temp).resolve() / "cmake"
        out = build / "python" / "picoring"
        configure = [
            "cmake", "-S", str(ROOT), "-B", str(build),
            "-DCMAKE_BUILD_TYPE=Release",
            "-DPICORING_PYTHON=ON",
            "-DPICORING_BUILD_TESTS=OFF",
            "-DPICORING_BUILD_BENCHMARKS=OFF",
            "-DPICORING_BUILD_EXAMPLES=OFF",
            "-DPICORING_BUILD_SCENARIOS=OFF",
            "-DPICORING_INSTALL=OFF",
            f"-DPython3_EXECUTABLE={sys.executable}",
        ]
        subprocess.run(configure, check=True)
        jobs = str(os.cpu_count() or 2)
        subprocess.run(["cmake", "--build", str(build), "--target", "picoring_python", "-j", jobs], check=True)
        built = sorted(out.glob("_picoring*"))
        if len(built) != 1:
            raise RuntimeError(f"expected one built module in {out}, found {built}")
        target = pathlib.Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built[0], target)


setup(ext_modules=[Extension("picoring._picoring", sources=[])], cmdclass={"build_ext": CMakeBuild})
