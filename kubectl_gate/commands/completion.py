"""``kubectl gate completion bash|zsh|fish|powershell``: completion scripts for ``kubectl-gate``.

For ``kubectl gate <TAB>`` (kubectl >= 1.26) nothing more is needed than ``kubectl_complete-gate``
on PATH, which pip, Homebrew and install.sh put next to ``kubectl-gate``: kubectl's own completion
runs it.
"""

from __future__ import annotations

import click

from kubectl_gate.context import GateContext, pass_gate_ctx
from kubectl_gate.options import offline_options

BASH = r"""# bash completion for kubectl-gate; load with: source <(kubectl-gate completion bash)
_kubectl_gate() {
    local cur="${COMP_WORDS[COMP_CWORD]}" out directive
    out=$("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD-1}" "$cur" 2>/dev/null) || return
    directive=${out##*:}
    out=${out%:*}
    COMPREPLY=()
    local IFS=$'\n'
    for c in $out; do COMPREPLY+=("${c%%$'\t'*}"); done
    if [[ ${#COMPREPLY[@]} -eq 0 && $(( directive & 4 )) -eq 0 ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}
complete -o default -F _kubectl_gate kubectl-gate
"""

ZSH = r"""#compdef kubectl-gate
# zsh completion for kubectl-gate; load with: source <(kubectl-gate completion zsh)
_kubectl_gate() {
    local -a lines candidates
    local directive
    lines=("${(@f)$(${words[1]} __complete "${(@)words[2,CURRENT-1]}" "${words[CURRENT]}" 2>/dev/null)}")
    directive=${lines[-1]#:}
    candidates=("${(@)lines[1,-2]}")
    if (( ${#candidates} )); then
        compadd -Q -- "${candidates[@]%%$'\t'*}"
    elif (( (directive & 4) == 0 )); then
        _files
    fi
}
if [ "$funcstack[1]" = "_kubectl_gate" ]; then _kubectl_gate "$@"; else compdef _kubectl_gate kubectl-gate; fi
"""

FISH = r"""# fish completion for kubectl-gate; load with: kubectl-gate completion fish | source
function __kubectl_gate_complete
    set -l args (commandline -opc)
    set -l current (commandline -ct)
    set -l out ($args[1] __complete $args[2..-1] $current 2>/dev/null)
    for line in $out[1..-2]
        echo $line
    end
end
complete -c kubectl-gate -f -a '(__kubectl_gate_complete)'
"""

POWERSHELL = r"""# powershell completion for kubectl-gate; load with:
#   kubectl-gate completion powershell | Out-String | Invoke-Expression
Register-ArgumentCompleter -Native -CommandName 'kubectl-gate', 'kubectl-gate.exe' -ScriptBlock {
    param($WordToComplete, $CommandAst, $CursorPosition)
    $elements = @($CommandAst.CommandElements | Where-Object { $_.Extent.StartOffset -lt $CursorPosition } |
        ForEach-Object { $_.ToString() })
    $program = $elements[0]
    $words = @()
    if ($elements.Count -gt 1) { $words = @($elements[1..($elements.Count - 1)]) }
    if ($WordToComplete -eq '') { $words += '' }
    elseif ($words.Count -gt 0) { $words[-1] = $WordToComplete }
    # NB: Windows PowerShell drops an empty argument to a native command: pass it quoted
    $quoted = $words | ForEach-Object { if ($_ -eq '') { '""' } else { "'" + ($_ -replace "'", "''") + "'" } }
    $out = @(Invoke-Expression "& '$program' __complete $($quoted -join ' ') 2>`$null")
    if ($out.Count -eq 0) { return }
    $directive = [int]($out[-1].TrimStart(':'))
    $candidates = @($out | Select-Object -SkipLast 1)
    if ($candidates.Count -eq 0 -and ($directive -band 4) -eq 0) { return }  # files: PowerShell's default
    foreach ($c in $candidates) {
        $value = ($c -split "`t")[0]
        [System.Management.Automation.CompletionResult]::new($value, $value, 'ParameterValue', $value)
    }
}
"""

SCRIPTS = {"bash": BASH, "zsh": ZSH, "fish": FISH, "powershell": POWERSHELL}


@click.command("completion")
@click.argument("shell", type=click.Choice(sorted(SCRIPTS)))
@offline_options
@pass_gate_ctx
def completion_command(gctx: GateContext, shell: str) -> None:
    """Print the completion script for SHELL (completes commands, flags, gate names and CanaryGate
    names). 'kubectl gate <TAB>' needs only kubectl_complete-gate on PATH (kubectl >= 1.26).

    \b
    Examples:
      source <(kubectl-gate completion bash)
      kubectl-gate completion zsh > "${fpath[1]}/_kubectl-gate"
      kubectl-gate completion fish > ~/.config/fish/completions/kubectl-gate.fish
      kubectl-gate completion powershell | Out-String | Invoke-Expression
    """
    gctx.out(SCRIPTS[shell].rstrip("\n"))
