#!/usr/bin/env bash
# Builds the buddy tool and runs its demo; extra arguments go to `buddy demo` (for example --json).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/prerequisites.sh"
require_dotnet
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build "$root/src/Cli/Buddy.Cli.csproj" -c Release -v quiet -nologo >/dev/null
exec dotnet "$root/src/Cli/bin/Release/net10.0/buddy.dll" demo "$@"
