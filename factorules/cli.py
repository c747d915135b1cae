"""factorules: compile matrix-factorization specs into tested differentiation rules.

    factorules generate [--check]      write generated/ from spec/ (or diff against it)
    factorules generate --out DIR --package NAME [--ops a,b] [--backends torch,jax] [--check]
                                       the rules as a package of your own (docs/vendoring.md)
    factorules list [--json]           specs, variants, cases and backends
    factorules verify [--json]         cross-backend verification table (the main job)
    factorules audit [NAME ...]        check every derivation in high precision (mpmath)
    factorules audit --report          ... and write docs/derivations/<name>.md
    factorules audit --mutate NAME     mutation testing: does the audit catch wrong rules?
    factorules derive [NAME ...]       JVPs derived from the defining equations, beside the
                                       written ones, with their agreement at 50 digits
    factorules bench [NAME]            generated vs native autodiff, as time ratios
    factorules bench --plot FILE.png   the same, drawn (ratios; GFLOP/s against DGEMM)
    factorules bench tsqr              distributed TSQR on 4 host devices vs one-device qr
    factorules bench-memory            peak memory of Q as an operator (geqrf -> ormqr) vs dense
    factorules bench-checks [NAME]     what the checks of degenerate inputs cost: on vs off
    factorules new NAME                scaffold spec/NAME.yaml (commented, working example)

In a checkout, ``python cli.py ...`` is the same command.  Exit codes: 0 success, 1 a failed
check, 2 bad input (a spec error or bad arguments).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from factorules.compiler.paths import IN_CHECKOUT, ROOT, SPEC_DIR, TEMPLATES
from factorules.compiler.spec import SpecError


def _names(text: str | None) -> list[str] | None:
    """A comma-separated list option (None when not given)."""
    return None if text is None else [n.strip() for n in text.split(",") if n.strip()]


def cmd_generate(args) -> int:
    from factorules.compiler import pipeline
    from factorules.compiler.backends import NAMES

    targets = {}
    for target in args.target or []:
        backend, sep, version = target.partition("==")
        if not sep or backend not in NAMES or not version:
            print(f"generate: --target takes BACKEND==VERSION ({', '.join(NAMES)}), "
                  f"got {target!r}", file=sys.stderr)
            return 2
        targets[backend] = version
    if targets and args.check:
        print("generate: --check compares with the signature tables of every version; "
              "--target is for a deployment", file=sys.stderr)
        return 2
    from factorules.compiler.render import load_checked, render_tree

    checked = load_checked(pipeline.spec_paths(Path(args.spec_dir)))  # once, for both trees
    if args.out is not None:
        return _generate_package(args, checked, targets)
    elsewhere = [flag for flag, given in (("--package", args.package), ("--ops", args.ops),
                                          ("--backends", args.backends)) if given is not None]
    if Path(args.spec_dir).resolve() != SPEC_DIR.resolve():
        elsewhere.append("--spec-dir")
    if elsewhere or not IN_CHECKOUT:
        why = (f"{', '.join(elsewhere)} without --out" if elsewhere else
               "no checkout of the repository here (its generated/ is what --out defaults to)")
        print(f"generate: {why}: give --out DIR (and --package NAME) to write a package; "
              f"generated/ is rendered from spec/ alone", file=sys.stderr)
        return 2
    files = render_tree(checked, targets)
    if args.check:
        from factorules.audit import derivation

        stale = 0
        diff = pipeline.drift(files)
        if diff:
            sys.stdout.write(diff)
            print("generated/ is stale: run `python cli.py generate`", file=sys.stderr)
            stale = 1
        pages = derivation.render(checked)
        diff = pipeline.drift(pages, folder=derivation.FOLDER)
        if diff:
            sys.stdout.write(diff)
            print(f"{derivation.FOLDER}/ is stale: run `python cli.py audit --report`",
                  file=sys.stderr)
            stale = 1
        if not stale:
            print(f"generated/ is up to date ({len(files)} files), and so is "
                  f"{derivation.FOLDER}/ ({len(pages)} pages)")
        return stale
    pipeline.write(files)
    print(f"wrote {len(files)} files to generated/")
    return 0


def _generate_package(args, checked, targets) -> int:
    """generate --out: the selected rules as the package --package, in the folder --out."""
    from factorules.compiler import pipeline, vendor

    out = Path(args.out).resolve()
    if IN_CHECKOUT and out == (ROOT / "generated").resolve() and args.package is None:
        args.package = "generated"
    if args.package is None:
        print("generate: --out needs --package NAME (the dotted name the folder is imported "
              "as, e.g. mylib._linalg_rules)", file=sys.stderr)
        return 2
    try:
        files = vendor.render_package(checked, args.package, out.name, _names(args.ops),
                                      _names(args.backends), targets)
    except vendor.VendorError as err:
        print(f"generate: {err}", file=sys.stderr)
        return 2
    if args.check:
        diff = pipeline.drift(files, out.parent, out.name)
        if diff:
            sys.stdout.write(diff)
            print(f"{out} is stale: rerun the same `generate` without --check", file=sys.stderr)
            return 1
        print(f"{out} is up to date ({len(files)} files)")
        return 0
    foreign = vendor.foreign_files(out)
    if foreign:
        print(f"generate: {out} holds files factorules did not write ({', '.join(foreign[:3])}"
              f"{', ...' if len(foreign) > 3 else ''}): --out must be a new folder or one "
              f"generate wrote, since it is replaced as a whole", file=sys.stderr)
        return 2
    pipeline.write(files, out.parent, out.name)
    print(f"wrote {len(files)} files to {out} (package {args.package})")
    return 0


def cmd_list(args) -> int:
    from factorules.compiler import pipeline
    from factorules.compiler.backends import NAMES
    from factorules.compiler.render import load_checked

    rows = []
    for checked in load_checked(pipeline.spec_paths(Path(args.spec_dir))):
        for cv in checked.variants:
            rows.append({
                "spec": checked.spec.name, "variant": cv.variant.label,
                "cases": [c.condition.text for c in cv.cases],
                "outputs": [o.name for o in cv.differentiable_outputs],
                "backends": list(NAMES)})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    cells = [[r["spec"], r["variant"], " | ".join(r["cases"]), ",".join(r["outputs"]),
              ", ".join(r["backends"])] for r in rows]
    header = ["spec", "variant", "cases", "outputs", "backends"]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(4)]
    for c in [header, *cells]:
        print(" ".join(f"{x:<{w}}" for x, w in zip(c, widths)) + " " + c[4])
    return 0


def cmd_verify(args) -> int:
    from factorules.tools import verify

    return verify.main(args)


def cmd_audit(args) -> int:
    if args.mutate:
        from factorules.audit import mutate

        return mutate.main(args)
    from factorules.audit import command

    return command.main(args)


def cmd_derive(args) -> int:
    from factorules.audit import agreement

    return agreement.main(args)


def cmd_new(args) -> int:
    import jinja2

    name = args.name
    if not name.isidentifier() or name.startswith("_") or name != name.lower():
        print(f"new: '{name}' is not a valid spec name (a lower-case Python identifier, not "
              f"starting with '_')", file=sys.stderr)
        return 2
    target = Path(args.spec_dir) / f"{name}.yaml"
    if target.exists():
        print(f"new: {target} already exists", file=sys.stderr)
        return 2
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    target.write_text(env.get_template("new_spec.yaml.jinja").render(name=name),
                      encoding="utf-8")
    print(f"wrote {target}: a working spec (the Cholesky factorization, as an example) to "
          f"edit; then run `python cli.py audit {name}` (docs/adding-a-factorization.md)")
    return 0


def cmd_bench(args) -> int:
    from factorules.tools import bench, bench_distributed, bench_plot

    if bench_distributed.NAME in args.names:  # the TSQR row: named alone, not a spec
        if args.names != [bench_distributed.NAME]:
            print(f"bench: {bench_distributed.NAME} runs alone, not with specs", file=sys.stderr)
            return 2
        if args.plot or args.from_json:
            print(f"bench: --plot draws the specs' rows, not {bench_distributed.NAME}",
                  file=sys.stderr)
            return 2
        return bench_distributed.main(args)
    if args.from_json:  # a saved run, drawn again: nothing is timed
        return bench_plot.redraw(args)
    return bench.main(args)


def cmd_bench_checks(args) -> int:
    from factorules.tools import bench_checks
    return bench_checks.main(args)


def cmd_bench_memory(args) -> int:
    from factorules.tools import memory

    return memory.main(args)


def cmd_diff(args) -> int:
    from factorules.tools import spec_diff

    return spec_diff.main(args)


def cmd_signatures(args) -> int:
    from factorules.tools import signatures

    return signatures.main(args)


def build_parser() -> argparse.ArgumentParser:
    from factorules.tools import memory  # its backends: --backend of bench-memory

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spec-dir", default=str(SPEC_DIR), help="folder of spec YAML files")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("generate", help="write generated/ from spec/")
    p.add_argument("--check", action="store_true",
                   help="write nothing; print a diff and exit 1 if generated/ (or --out) is "
                        "stale")
    p.add_argument("--out", metavar="DIR",
                   help="write the rules as a package into DIR (replaced as a whole; only a "
                        "new folder or one generate wrote) instead of generated/")
    p.add_argument("--package", metavar="NAME",
                   help="with --out: the dotted name DIR is imported as (mylib._linalg_rules)")
    p.add_argument("--ops", metavar="A,B",
                   help="with --out: these operations and those they call (default: all)")
    p.add_argument("--backends", metavar="A,B",
                   help="with --out: these backends (default: numpy,torch,jax,cupy)")
    p.add_argument("--target", action="append", metavar="BACKEND==VERSION",
                   help="emit the backend's calls for that version of its library alone (the "
                        "signature entry whose since/until hold it), instead of every entry "
                        "chosen at import; repeatable")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("list", help="list specs, variants, cases and backends")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("verify", help="regenerate, then check every rule across backends")
    p.add_argument("names", nargs="*", help="specs to verify (default: all)")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.add_argument("--no-generate", action="store_true", help="use generated/ as it is")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="print every check (a cell of the table) before the table: its worst "
                        "error, tolerance, and the shape and dtype where it was measured")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("audit", help="check every derivation against its defining equations "
                                     "in high precision")
    p.add_argument("names", nargs="*", help="specs to audit (default: all)")
    p.add_argument("--json", action="store_true", help="print every check as JSON")
    p.add_argument("--report", action="store_true",
                   help="also write the derivation pages docs/derivations/<name>.md")
    p.add_argument("--mutate", metavar="NAME",
                   help="mutation testing of one spec: apply the mutation catalogue to its "
                        "rules and report which check catches each mutant")
    p.add_argument("-v", "--verbose", action="store_true", help="print every check")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("derive", help="each case's JVP derived from its defining equation "
                                      "(jvp: derive), beside the written one, with their "
                                      "agreement at 50 digits")
    p.add_argument("names", nargs="*", help="specs (default: all)")
    p.set_defaults(func=cmd_derive)

    p = sub.add_parser("new", help="scaffold spec/NAME.yaml: every field, commented, working")
    p.add_argument("name", help="the operation's name (a lower-case Python identifier)")
    p.set_defaults(func=cmd_new)

    p = sub.add_parser("bench", help="time generated rules against native autodiff")
    p.add_argument("names", nargs="*", help="specs to benchmark (default: all), or tsqr alone: "
                                            "factorules.jax.tsqr on 4 host devices against qr")
    p.add_argument("--repeats", type=int, default=15, help="interleaved timed samples per row "
                                                           "(a ratio needs 15)")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.add_argument("--quick", action="store_true", help="small sizes (for smoke tests)")
    p.add_argument("--shape", action="append", metavar="SHAPE",
                   help="only the rows of this shape, as the table writes it (4096x8x8); "
                        "repeatable")
    p.add_argument("--row-timeout", type=float, metavar="SECONDS",
                   help="each row runs in a process of its own; one still running after this "
                        "long is killed and reported (default: 300, or 60 with --quick)")
    p.add_argument("--plot", metavar="FILE.png",
                   help="after the run, draw the ratios and the large rows' GFLOP/s against "
                        "this machine's DGEMM rate (needs matplotlib)")
    p.add_argument("--from-json", metavar="FILE.json",
                   help="with --plot: draw a saved --json run instead of running the bench "
                        "(NAMEs select its specs)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("bench-checks", help="time the generated derivatives with the checks "
                                            "of degenerate inputs on and off")
    p.add_argument("names", nargs="*", help="specs (default: every spec with a switch)")
    p.add_argument("--repeats", type=int, default=15, help="interleaved timed runs per row")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.add_argument("--quick", action="store_true", help="small sizes (for smoke tests)")
    p.set_defaults(func=cmd_bench_checks)

    p = sub.add_parser("bench-memory", help="peak memory of a gradient through geqrf -> ormqr: "
                                            "Q as an operator against Q formed densely")
    p.add_argument("--m", type=int, default=200000, help="rows of A (default: 200000)")
    p.add_argument("--n", type=int, default=32, help="columns of A (default: 32)")
    p.add_argument("--backend", choices=list(memory.PATHS),
                   help="one backend (default: both)")
    p.add_argument("--dense-m", type=int, default=4000,
                   help="rows at which the dense-Q path is measured beside the operator path "
                        "(default: 4000)")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.set_defaults(func=cmd_bench_memory)

    p = sub.add_parser("diff", help="what a spec edit changes: rules, native calls, generated "
                                    "files and derivation pages, between two revisions or "
                                    "spec files")
    p.add_argument("old", help="a git revision (its spec/), a spec folder, or a spec file "
                               "(put in place of the --spec-dir spec of its name)")
    p.add_argument("new", nargs="?", help="the same (default: the --spec-dir folder)")
    p.add_argument("--summary", action="store_true", help="the summary only, no unified diff")
    p.add_argument("--no-pages", action="store_true",
                   help="leave out the derivation pages (they rerun the audit)")
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("signatures", help="the specs' signature tables against the installed "
                                          "torch, jax, numpy, scipy and cupy: every keyword, "
                                          "default or documented value that differs")
    p.add_argument("names", nargs="*", help="specs to check (default: all)")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.set_defaults(func=cmd_signatures)
    return parser


def check_specs(spec_dir: Path, names=None) -> None:
    """Load and check the specs a command reads, before the printers (and the frameworks they
    import) load: those of ``names`` (a command's spec names; a name without a file is left to
    the command to report), or every spec.

    A bad spec fails here, quickly, and before any command writes anything.
    """
    from factorules.compiler.check import check_file

    paths = sorted(spec_dir.glob("*.yaml"))
    if names:
        paths = [p for p in paths if p.stem in names]
    for path in paths:
        try:
            shown = str(path.resolve().relative_to(ROOT))
        except ValueError:
            shown = str(path)
        check_file(path, shown)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    spec_dir = Path(args.spec_dir)
    if args.command == "new":
        if not spec_dir.is_dir():
            print(f"{args.spec_dir}: no such folder", file=sys.stderr)
            return 2
        return args.func(args)
    if not spec_dir.is_dir() or not any(spec_dir.glob("*.yaml")):
        # Nothing to generate from: never let a mistyped --spec-dir empty generated/.
        print(f"{args.spec_dir}: no spec files (*.yaml) in this folder", file=sys.stderr)
        return 2
    try:
        check_specs(spec_dir, getattr(args, "names", None))
        return args.func(args)
    except SpecError as err:
        print(err, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
