"""OpenDP's prelude, imported on first use.

``opendp.prelude`` pulls in scikit-learn (almost a second of start-up), which every CLI
call would pay for if techniques imported it at module level. Modules write
``from collabzone._opendp import dp`` and use ``dp.m.make_laplace(...)`` as usual; the
import and ``enable_features("contrib")`` happen at the first attribute access.
"""

from __future__ import annotations

from typing import Any


class _LazyPrelude:
    _module: Any = None

    def __getattr__(self, name: str) -> Any:
        if _LazyPrelude._module is None:
            import opendp.prelude as prelude

            prelude.enable_features("contrib")
            _LazyPrelude._module = prelude
        return getattr(_LazyPrelude._module, name)


dp: Any = _LazyPrelude()
