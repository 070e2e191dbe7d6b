# Homebrew formula for the prebuilt kubectl-gate binaries (docs/packaging.md#homebrew).
# Lives in the tap repository (canary-gate/homebrew-tap, Formula/canary-gate.rb):
#   brew install canary-gate/tap/canary-gate
# packaging/release.py fills in the version, url and sha256 values from the built archives, one
# url per OS and CPU. It installs the PyInstaller onedir build (the *_onedir.tar.gz archives),
# which starts several times faster than the single file: the whole tree goes to libexec (the
# executable needs its _internal/ beside it) and bin/kubectl-gate links to it.
# No `canary-gate` command: that name belongs to the Go original's cask, and a link of ours would
# clash with it. Completions for bash, zsh and fish come from `kubectl-gate completion SHELL`.
class CanaryGate < Formula
  desc "Show, open and close manual approval gates of Flagger canary releases"
  homepage "https://github.com/canary-gate/canary-gate"
  license "Apache-2.0"

  livecheck do
    url :stable
    strategy :github_latest
  end

  on_macos do
    on_arm do
      url "https://github.com/canary-gate/canary-gate/releases/download/v0.1.0/kubectl-gate_v0.1.0_darwin_arm64_onedir.tar.gz"
      sha256 "0000000000000000000000000000000000000000000000000000000000000000"
    end
    on_intel do
      url "https://github.com/canary-gate/canary-gate/releases/download/v0.1.0/kubectl-gate_v0.1.0_darwin_amd64_onedir.tar.gz"
      sha256 "0000000000000000000000000000000000000000000000000000000000000000"
    end
  end

  on_linux do
    on_arm do
      url "https://github.com/canary-gate/canary-gate/releases/download/v0.1.0/kubectl-gate_v0.1.0_linux_arm64_onedir.tar.gz"
      sha256 "0000000000000000000000000000000000000000000000000000000000000000"
    end
    on_intel do
      url "https://github.com/canary-gate/canary-gate/releases/download/v0.1.0/kubectl-gate_v0.1.0_linux_amd64_onedir.tar.gz"
      sha256 "0000000000000000000000000000000000000000000000000000000000000000"
    end
  end

  def install
    libexec.install "kubectl-gate", "_internal"
    bin.install_symlink libexec/"kubectl-gate"
    bin.install "kubectl_complete-gate"
    generate_completions_from_executable(bin/"kubectl-gate", "completion", shells: [:bash, :zsh, :fish])
  end

  test do
    assert_match version.to_s, shell_output("#{bin}/kubectl-gate version --client")
    # A real command that needs no cluster: render the Flagger Canary of a CanaryGate.
    (testpath/"gate.yaml").write <<~YAML
      apiVersion: piggysec.com/v1alpha1
      kind: CanaryGate
      metadata: {name: demo, namespace: demo}
      spec:
        confirm-promotion: closed
        target: {namespace: demo, name: demo}
        flagger:
          targetRef: {apiVersion: apps/v1, kind: Deployment, name: demo}
          service: {port: 8080}
          analysis: {interval: 10s, threshold: 2, maxWeight: 40, stepWeight: 10}
    YAML
    canary = shell_output("#{bin}/kubectl-gate render -f #{testpath}/gate.yaml")
    assert_match "kind: Canary", canary
    assert_match "/confirm-promotion", canary
    assert_match "complete", shell_output("#{bin}/kubectl-gate completion bash")
  end
end
