using System.Diagnostics;
using System.Globalization;

namespace Buddy.Harness;

/// <summary>Starts the harness again as a child process for one peer, preloading the peer's library where it needs that.</summary>
public static class Child
{
    public static Process Start(string peer, params string[] args)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet") start.ArgumentList.Add(typeof(Child).Assembly.Location);
        foreach (string arg in args) start.ArgumentList.Add(arg);
        if (Peers.Preloaded.TryGetValue(peer, out string? library))
        {
            string path = Path.Combine("/usr/lib", $"{System.Runtime.InteropServices.RuntimeInformation.OSArchitecture switch { System.Runtime.InteropServices.Architecture.Arm64 => "aarch64", _ => "x86_64" }}-linux-gnu", library);
            if (File.Exists(path))
            {
                start.Environment["LD_PRELOAD"] = path;
                start.Environment[Peers.PreloadVariable] = peer;
            }
        }
        return Process.Start(start)!;
    }

    /// <summary>Runs in the child: µs per churn operation for one peer, or the reason it is missing.</summary>
    public static int RunChurn(string peerName, int operations, int delayMs)
    {
        using IPeer? peer = Peers.TryCreate(peerName, TimeSpan.FromMilliseconds(delayMs), out string? missing);
        Console.WriteLine(peer is null ? $"missing,{missing}" : string.Create(CultureInfo.InvariantCulture, $"churn,{Scenarios.Churn(peer, operations):F3}"));
        return 0;
    }

    /// <summary>µs per churn operation for every peer, each in its own process.</summary>
    public static Dictionary<string, double> Churn(int operations, int delayMs, List<string> skipped)
    {
        var result = new Dictionary<string, double>();
        foreach (string peer in Peers.Names)
        {
            using Process child = Start(peer, "--churn-child", peer, $"{operations}", $"{delayMs}");
            string output = child.StandardOutput.ReadToEnd().Trim();
            child.WaitForExit();
            string[] parts = output.Split(',', 2);
            if (parts[0] == "churn") result[peer] = double.Parse(parts[1], CultureInfo.InvariantCulture);
            else if (!skipped.Any(s => s.StartsWith(peer + ":", StringComparison.Ordinal))) skipped.Add($"{peer}: {(parts.Length > 1 ? parts[1] : output)}");
        }
        return result;
    }
}
