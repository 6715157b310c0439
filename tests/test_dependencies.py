"""minivq/ imports numpy, autograd, matplotlib and tqdm only (the brief's runtime dependencies)."""
import pkgutil
import subprocess
import sys

import minivq

# Installed on a developer's machine but not by `pip install minivq`: an import of one of them
# works here and fails on a fresh machine (autograd.scipy, for one, needs scipy).
NOT_DEPENDENCIES = ("scipy", "torch", "pandas", "sklearn")


def test_every_module_imports_without_the_packages_minivq_does_not_depend_on():
    modules = sorted(f"minivq.{m.name}" for m in pkgutil.iter_modules(minivq.__path__))
    blocked = list(NOT_DEPENDENCIES)
    code = (f"import sys\nfor name in {blocked!r}:\n    sys.modules[name] = None   # import fails\n"
            f"import importlib\nfor m in {modules!r}:\n    importlib.import_module(m)\nprint('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
    assert "minivq.classifier" in modules and "minivq.cli" in modules       # the list is not empty
