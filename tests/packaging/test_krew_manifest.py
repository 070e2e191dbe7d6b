""".krew.yaml rendered as krew-release-bot renders it, and krew/gate.yaml, checked with krew's rules.

Covers:
- the renderer (krew_rules.render_like_krew_release_bot) behaves as the bot's Go code: its own
  test vectors (indent 4 and the legacy 4-space sha256 moved to 6), `{{ .TagName }}` inside the
  URL string, an unknown function fails; and it reproduces the bug this template had: without
  `| indent 6` the sha256 line lands at 4 spaces and the YAML does not parse;
- the rendered .krew.yaml parses, passes krew's validation and names no field krew ignores; each
  uri is the release's archive for its platform (onedir on linux, onefile on darwin and windows),
  and with the sha256 of archives packaging/release.py built it is the same manifest release.py
  writes (so the bot's PRs and the hand-submitted first version agree);
- the caveats are pinned to the tag (`?ref=<tag>`), in both the template and the checked-in manifest;
- when Go is installed, Go's own text/template renders the template with the bot's two functions
  (written here from their documented behaviour) to the same text as the Python renderer.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest
import yaml

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from krew_rules import TemplateError, render_like_krew_release_bot, unknown_fields, validate_krew

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / ".krew.yaml"
CHECKED_IN = ROOT / "krew" / "gate.yaml"
DUMMY = "ab" * 32


def render(text: str, tag: str = "v1.2.3", sha_of=lambda url: DUMMY) -> str:
    return render_like_krew_release_bot(text, tag, sha_of)


def test_renderer_matches_the_bots_own_vectors() -> None:
    # pkg/source/template_test.go TestFixIndent, through the template function
    assert render('{{ "uri: x\\nsha256: y" | indent 4 }}') == "uri: x\n    sha256: y"
    assert render('{{ "uri: x\\n    sha256: y" | indent 6 }}') == "uri: x\n      sha256: y"
    text = '      {{addURIAndSha "https://h/{{ .TagName }}/a_{{ .TagName }}.tar.gz" .TagName | indent 6 }}\n'
    assert render(text, "v0.0.2") == f"      uri: https://h/v0.0.2/a_v0.0.2.tar.gz\n      sha256: {DUMMY}\n"
    assert render('    {{addURIAndSha "https://h/x" .TagName }}') == f"    uri: https://h/x\n    sha256: {DUMMY}"
    with pytest.raises(TemplateError, match='function "addURI" not defined'):
        render('{{ addURI "x" .TagName }}')


def test_the_old_template_form_breaks_the_yaml_and_the_new_one_does_not() -> None:
    text = TEMPLATE.read_text()
    assert text.count("| indent 6 }}") == 5
    broken = render(text.replace(" | indent 6 }}", " }}"))
    assert "\n    sha256: " in broken, "the bot's fixed 4-space indent"
    with pytest.raises(yaml.YAMLError):
        yaml.safe_load(broken)
    yaml.safe_load(render(text))


def test_rendered_template_is_a_valid_manifest(tmp_path: pathlib.Path) -> None:
    rendered = render(TEMPLATE.read_text())
    doc = yaml.safe_load(rendered)
    assert validate_krew(tmp_path / "gate.yaml", doc) == []
    assert unknown_fields(doc) == []
    assert doc["spec"]["version"] == "v1.2.3"
    base = "https://github.com/canary-gate/canary-gate/releases/download/v1.2.3/kubectl-gate_v1.2.3"
    for platform in doc["spec"]["platforms"]:
        labels = platform["selector"]["matchLabels"]
        suffix = {"linux": "_onedir.tar.gz", "darwin": ".tar.gz", "windows": ".zip"}[labels["os"]]
        assert platform["uri"] == f"{base}_{labels['os']}_{labels['arch']}{suffix}"
        assert platform["sha256"] == DUMMY
    assert "deploy/sidecar?ref=v1.2.3'" in doc["spec"]["caveats"]


def test_checked_in_manifest_is_valid_and_pinned() -> None:
    doc = yaml.safe_load(CHECKED_IN.read_text())
    assert validate_krew(CHECKED_IN, doc) == []
    assert unknown_fields(doc) == []
    assert f"deploy/sidecar?ref={doc['spec']['version']}'" in doc["spec"]["caveats"]


def test_bot_rendering_equals_what_release_py_writes(tmp_path: pathlib.Path) -> None:
    """With the sha256 of real release.py archives, the bot's manifest is release.py's manifest."""
    from test_release import fake_binaries, run_release

    fake_binaries(tmp_path / "bins")
    (tmp_path / "LICENSE").write_text("licence\n")
    result = run_release(tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"

    def sha_of(url: str) -> str:
        name = url.rsplit("/", 1)[1]
        return (out / f"{name}.sha256").read_text().split()[0]

    by_bot = yaml.safe_load(render(TEMPLATE.read_text(), "v0.3.1", sha_of))
    by_release = yaml.safe_load((out / "gate.yaml").read_text())
    assert by_bot == by_release


GO_PROGRAM = """package main

// Renders a krew-release-bot template with Go's text/template and the bot's two functions,
// written from their documented behaviour; sha256 values come from a file of "url hex" lines.
import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
	"text/template"
)

func main() {
	shas := map[string]string{}
	f, _ := os.Open(os.Args[3])
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		parts := strings.Fields(scanner.Text())
		shas[parts[0]] = parts[1]
	}
	funcs := template.FuncMap{
		"indent": func(spaces int, v string) string {
			v = strings.Replace(v, "    sha256:", "sha256:", -1)
			pad := strings.Repeat(" ", spaces)
			return strings.TrimSpace(pad + strings.Replace(v, "\\n", "\\n"+pad, -1))
		},
		"addURIAndSha": func(url, tag string) string {
			buf := new(bytes.Buffer)
			template.Must(template.New("url").Parse(url)).Execute(buf, struct{ TagName string }{tag})
			return fmt.Sprintf("uri: %s\\n    sha256: %s", buf.String(), shas[buf.String()])
		},
	}
	t := template.Must(template.New("krew").Funcs(funcs).ParseFiles(os.Args[1]))
	if err := t.ExecuteTemplate(os.Stdout, "krew", struct{ TagName string }{os.Args[2]}); err != nil {
		panic(err)
	}
}
"""


@pytest.mark.skipif(shutil.which("go") is None, reason="Go is not installed: Go's text/template cross-check")
def test_go_text_template_renders_the_same(tmp_path: pathlib.Path) -> None:
    program = tmp_path / "main.go"
    program.write_text(
        GO_PROGRAM.replace('New("krew")', 'New(".krew.yaml")').replace(
            'ExecuteTemplate(os.Stdout, "krew"', 'ExecuteTemplate(os.Stdout, ".krew.yaml"'
        )
    )
    urls = {}
    rendered = render(TEMPLATE.read_text(), "v1.2.3", lambda url: urls.setdefault(url, f"{len(urls):064x}"))
    (tmp_path / "shas.txt").write_text("".join(f"{u} {s}\n" for u, s in urls.items()))
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GO111MODULE": "off", "GOTOOLCHAIN": "local"}
    out = subprocess.run(
        ["go", "run", str(program), str(TEMPLATE), "v1.2.3", str(tmp_path / "shas.txt")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == rendered
