"""What both CLIs share: one-line errors and plain tables."""

from __future__ import annotations

import sys

import click

from search.contract import ArgumentError, SongSearchError

#: API arguments whose flag is not simply --argument-name
FLAG_OF = {"song": "--id/--song", "method": "--fusion", "query": "QUERY"}


def flag_for(argument: str) -> str:
    return FLAG_OF.get(argument, "--" + argument.replace("_", "-"))


def _undecodable(text: str) -> bool:
    """Whether a command-line argument held bytes that are not UTF-8 (Python keeps them as
    lone surrogates, which fail later wherever the text is encoded: printed, embedded, sent)."""
    return any("\udc80" <= c <= "\udcff" for c in text)


class TextCheckedCommand(click.Command):
    """A command that refuses arguments that are not UTF-8 text, naming the flag, before any
    of them is used."""

    def parse_args(self, ctx, args):
        for position, arg in enumerate(args):
            if _undecodable(arg):
                flag, _, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
                if not flag and position and args[position - 1].startswith("-"):
                    flag = args[position - 1]
                where = f"{flag} " if flag and not _undecodable(flag) else f"argument {position + 1} "
                raise click.UsageError(f"{where}is not valid UTF-8 text", ctx)
        return super().parse_args(ctx, args)


class OneLineErrorGroup(click.Group):
    """A click group whose every error is one line on stderr and a non-zero exit, never a traceback.

    Usage errors exit 2 (click's convention), errors of the data or the store exit 1.
    """

    command_class = TextCheckedCommand

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ArgumentError as exc:
            raise click.UsageError(f"{flag_for(exc.argument)} {exc.problem}", ctx) from None
        except SongSearchError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:  # a full disk, a read-only home, a vanished file
            where = f": {exc.filename}" if exc.filename else ""
            raise click.ClickException(f"{exc.strerror or exc}{where}") from None

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            click.echo(f"Error: {exc.format_message()}{hint}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        sys.exit(result if isinstance(result, int) else 0)


def format_table(headers: list[str], rows: list[list[str]], markdown: bool = False) -> str:
    """A plain text table (numbers right-aligned), or with ``markdown`` a GitHub table."""
    if markdown:
        numeric = [i > 0 and bool(rows) and all(_is_number(r[i]) or r[i] == "-" for r in rows) for i in range(len(headers))]
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---:" if num else "---" for num in numeric) + "|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    numeric = [all(_is_number(r[i]) for r in rows) and bool(rows) for i in range(len(headers))]

    def line(cells):
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    return format_table(headers, rows, markdown=True)
