"""`baas completion bash|zsh|fish`: print the shell completion script (click's own)."""
from __future__ import annotations

import click
from click.shell_completion import get_completion_class

INSTALL = {
    "bash": 'eval "$(baas completion bash)"   # add to ~/.bashrc',
    "zsh": 'eval "$(baas completion zsh)"    # add to ~/.zshrc',
    "fish": "baas completion fish > ~/.config/fish/completions/baas.fish",
}


@click.command()
@click.argument("shell", type=click.Choice(sorted(INSTALL)))
@click.pass_context
def completion(ctx, shell):
    """Print the completion script for SHELL. Install it with, e.g.: eval "$(baas completion bash)"."""
    root = ctx.find_root()
    script = get_completion_class(shell)(root.command, {}, "baas", "_BAAS_COMPLETE")
    click.echo(script.source())
    click.echo(f"# install: {INSTALL[shell]}")


def register(cli: click.Group) -> None:
    cli.add_command(completion)
