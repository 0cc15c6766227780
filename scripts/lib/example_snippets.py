"""The README quotes each example of Examples/Sources: its imports and the body of its main().

`python3 scripts/lib/example_snippets.py check` fails, naming the example, when the README's
quote of one differs from the code; `print NAME` prints what the README should quote.
"""
import pathlib
import sys
import textwrap

ROOT = pathlib.Path(__file__).resolve().parents[2]


def snippet(name: str) -> str:
    source = (ROOT / "Examples" / "Sources" / name / f"{name}.swift").read_text()
    lines = source.splitlines()
    imports = [line for line in lines if line.startswith("import ")]
    last_import = max(i for i, line in enumerate(lines) if line.startswith("import "))
    main_type = next(i for i, line in enumerate(lines) if line == "@main")
    types = "\n".join(lines[last_import + 1:main_type]).strip()
    start = next(i for i, line in enumerate(lines) if "static func main() async throws {" in line) + 1
    # The body ends at the closing brace of main(), indented four spaces.
    end = next(i for i in range(start, len(lines)) if lines[i] == "    }")
    body = textwrap.dedent("\n".join(lines[start:end]))
    return "\n".join(imports) + "\n\n" + (types + "\n\n" if types else "") + body + "\n"


def names() -> list[str]:
    return sorted(p.name for p in (ROOT / "Examples" / "Sources").iterdir() if p.is_dir())


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "print":
        sys.stdout.write(snippet(sys.argv[2]))
        return 0
    if len(sys.argv) == 2 and sys.argv[1] == "check":
        readme = (ROOT / "README.md").read_text()
        stale = [name for name in names() if f"```swift\n{snippet(name)}```" not in readme]
        for name in stale:
            print(f"README.md does not quote Examples/Sources/{name} as it is; "
                  f"paste the output of `python3 scripts/lib/example_snippets.py print {name}`.", file=sys.stderr)
        return 1 if stale else 0
    print("usage: example_snippets.py check | print NAME", file=sys.stderr)
    return 2


sys.exit(main())
