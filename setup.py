"""The one compiled part of ccdm-gui: the CPU score machines' fused fold (foldc.c).

Everything else is declared in pyproject.toml. The extension is optional: where no C
compiler is at hand (or on a CPU without AVX2), the machines take the numba route.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "ccdm_gui.core.machines._foldc",
            sources=["ccdm_gui/core/machines/foldc.c"],
            depends=[
                "ccdm_gui/core/machines/foldc_body.h",
                "ccdm_gui/core/machines/wsum_body.h",
            ],
            extra_compile_args=["-O3"],
            optional=True,
        )
    ]
)
