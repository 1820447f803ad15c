"""House habits that a reviewer would otherwise have to check by eye."""

import ast
import io
import pathlib
import tokenize

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "jaxdl"
MAX_CODE_LINES = 60


def _token_lines(source: str) -> set[int]:
    """The lines of ``source`` holding a code token (not blank, not only a comment)."""
    code = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                            tokenize.DEDENT, tokenize.ENDMARKER):
            code.update(range(tok.start[0], tok.end[0] + 1))
    return code


def _code_lines(code: set[int], node: ast.AST) -> int:
    """Code lines of ``node``, its docstring left out."""
    lines = set(range(node.lineno, node.end_lineno + 1))
    body = getattr(node, "body", [])
    if body and isinstance(body[0], ast.Expr) and isinstance(
            getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
        lines -= set(range(body[0].lineno, body[0].end_lineno + 1))
    return len(lines & code)


def _functions():
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        code = _token_lines(source)
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield path.relative_to(PACKAGE.parent), node, code


def test_the_length_rule_counts_code_not_docstrings_or_comments():
    source = 'def f():\n    """Doc\n    string."""\n    # comment\n\n    x = 1\n    return x\n'
    assert _code_lines(_token_lines(source), ast.parse(source).body[0]) == 3


def test_no_function_in_jaxdl_is_over_60_code_lines():
    long = [f"{path}:{node.lineno} {node.name} ({n} lines)"
            for path, node, code in _functions()
            if (n := _code_lines(code, node)) > MAX_CODE_LINES]
    assert not long, "split these functions into named helpers: " + ", ".join(long)


def _is_module(package: str, name: str) -> bool:
    """``from jaxdl.nn import _common`` imports a module (the house convention), not a name."""
    return (PACKAGE.parent / package.replace(".", "/") / f"{name}.py").exists()


@pytest.mark.parametrize("module", sorted(str(p.relative_to(PACKAGE.parent))
                                          for p in PACKAGE.rglob("*.py")))
def test_no_private_name_is_imported_across_modules(module):
    tree = ast.parse((PACKAGE.parent / module).read_text())
    bad = [f"{node.module}.{alias.name}" for node in ast.walk(tree)
           if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("jaxdl")
           for alias in node.names
           if alias.name.startswith("_") and not alias.name.startswith("__")
           and not _is_module(node.module, alias.name)]
    assert not bad, f"{module} imports private names of other modules: {bad}"
