using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Buddy.ServiceLoad;

internal sealed record WrkResult(long Requests, double RequestsPerSecond, double P50Ms, double P99Ms, long Errors, string Output);

/// <summary>Runs wrk with a latency distribution and reads its summary.</summary>
internal static partial class Wrk
{
    public static Task<WrkResult> RunAsync(string url, string script, int responseBytes, int connections, TimeSpan duration)
        => RunAsync(["-t2", $"-c{connections}", $"-d{(int)duration.TotalSeconds}s", "--timeout", "30s", "--latency", "-s", script, $"{url}/exchange/{responseBytes}"]);

    /// <summary>Runs wrk with <paramref name="arguments"/> (which must include --latency) and reads its summary.</summary>
    public static async Task<WrkResult> RunAsync(IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo("wrk") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in arguments) start.ArgumentList.Add(a);
        using Process wrk = Process.Start(start) ?? throw new InvalidOperationException("could not start wrk");
        string output = await wrk.StandardOutput.ReadToEndAsync();
        string error = await wrk.StandardError.ReadToEndAsync();
        await wrk.WaitForExitAsync();
        if (wrk.ExitCode != 0) throw new InvalidOperationException($"wrk failed ({wrk.ExitCode}): {error}{output}");
        long errors = 0;
        foreach (Match m in SocketErrors().Matches(output)) errors += long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        if (Non2xx().Match(output) is { Success: true } bad) errors += long.Parse(bad.Groups[1].Value, CultureInfo.InvariantCulture);
        return new WrkResult(
            long.Parse(Requests().Match(output).Groups[1].Value, CultureInfo.InvariantCulture),
            double.Parse(PerSecond().Match(output).Groups[1].Value, CultureInfo.InvariantCulture),
            Latency(output, "50%"), Latency(output, "99%"), errors, output);
    }

    private static double Latency(string output, string percentile)
    {
        Match m = Regex.Match(output, $@"^\s+{Regex.Escape(percentile)}\s+([\d.]+)(us|ms|s|m)\s*$", RegexOptions.Multiline);
        if (!m.Success) throw new FormatException($"wrk printed no {percentile} latency:\n{output}");
        double value = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        return m.Groups[2].Value switch { "us" => value / 1000, "ms" => value, "s" => value * 1000, _ => value * 60_000 };
    }

    [GeneratedRegex(@"(\d+) requests in")]
    private static partial Regex Requests();

    [GeneratedRegex(@"Requests/sec:\s+([\d.]+)")]
    private static partial Regex PerSecond();

    [GeneratedRegex(@"(?:connect|read|write|timeout) (\d+)")]
    private static partial Regex SocketErrors();

    [GeneratedRegex(@"Non-2xx or 3xx responses: (\d+)")]
    private static partial Regex Non2xx();
}
