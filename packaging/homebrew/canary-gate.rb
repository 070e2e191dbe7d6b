# Homebrew formula for the prebuilt kubectl-gate binaries (UX-AND-PACKAGING.md §4.3, §4.5).
# Lives in the tap repository (canary-gate/homebrew-tap, Formula/canary-gate.rb):
#   brew install canary-gate/tap/canary-gate
# packaging/release.py fills in the version and sha256 values from the built archives.
# It installs the PyInstaller onedir build (the *_onedir.tar.gz archives), which starts several
# times faster than the onefile krew ships: the whole tree goes to libexec (the executable
# needs its _internal/ beside it) and bin/kubectl-gate links to it.
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
    # The Go original's command name.
    bin.install_symlink "kubectl-gate" => "canary-gate"
  end

  test do
    assert_match version.to_s, shell_output("#{bin}/kubectl-gate version --client")
    assert_match version.to_s, shell_output("#{bin}/canary-gate version --client")
  end
end
