# Shared by the scripts: checks for and installs what they need.

require_dotnet() {
    if ! command -v dotnet >/dev/null 2>&1; then
        echo "The .NET 10 SDK is required: https://dotnet.microsoft.com/download (then run this again)." >&2
        exit 1
    fi
}

# apt_install PACKAGE...: installs Debian packages that are missing (as root, or through sudo).
apt_install() {
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}
