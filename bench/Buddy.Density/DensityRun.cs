using System.Diagnostics;
using System.Globalization;

namespace Buddy.Density;

/// <summary>An allocator as a worker runs it: the worker's mode and the environment that picks the malloc.</summary>
internal sealed record Allocator(string Name, string Key, string Mode, IReadOnlyDictionary<string, string> Environment, int ReportDelayMs = 0);

/// <summary>What each worker does, and the cap all of them share.</summary>
internal sealed record Workload(int BurstMiB, int KeepPercent, int PeriodMs, int Cycles, int LimitMiB, int MaxProcesses)
{
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"each process bursts {BurstMiB} MiB in blocks of 64 KiB - 4 MiB (log-uniform sizes, every page touched), frees the blocks it kept from the cycle before, keeps {KeepPercent}% of the new ones and frees the rest, then idles; one cycle every {PeriodMs / 1000.0:0.#} s, {Cycles} cycles, process i starting i/N of a period late; all N in one cgroup v1 memory group limited to {LimitMiB} MiB, no swap");
}

/// <summary>N workers in one capped group: did any get OOM-killed, how high did the group go, how long did bursts take.</summary>
internal sealed record RunResult(Allocator Allocator, int Processes, string? Failure, long PeakBytes, List<(double Seconds, long Bytes)> Usage, List<double> BurstMs)
{
    public bool Clean => Failure is null;
}

internal static class DensityRun
{
    public static async Task<RunResult> RunAsync(Allocator allocator, int processes, Workload load, string worker, string libbuddy)
    {
        using var group = MemoryGroup.Create((long)load.LimitMiB << 20);
        var bursts = new List<double>();
        var errors = new List<string>();
        var workers = new List<Process>();
        try
        {
            for (int i = 0; i < processes; i++)
                workers.Add(Start(allocator, load, worker, libbuddy, group, i, processes, bursts, errors));
            var usage = new List<(double, long)>();
            var clock = Stopwatch.StartNew();
            var deadline = TimeSpan.FromMilliseconds(load.PeriodMs * (load.Cycles + 2.0)) + TimeSpan.FromSeconds(30);
            string? failure = null;
            while (workers.Any(w => !w.HasExited))
            {
                usage.Add((clock.Elapsed.TotalSeconds, group.Usage));
                // One kill decides the run: stop the rest rather than wait out their cycles.
                if (group.OomKills > 0 || workers.Any(w => w.HasExited && w.ExitCode != 0) || clock.Elapsed > deadline)
                {
                    failure = clock.Elapsed > deadline ? "timed out" : null;
                    break;
                }
                await Task.Delay(100);
            }
            KillAll(workers);
            foreach (Process w in workers)
                await w.WaitForExitAsync();
            long kills = group.OomKills;
            int[] codes = workers.Select(w => w.ExitCode).Where(c => c != 0).ToArray();
            string firstError;
            lock (errors)
                firstError = errors.FirstOrDefault() ?? "";
            failure ??= kills > 0 ? $"{kills} OOM kill{(kills == 1 ? "" : "s")}"
                : codes.Length > 0 ? $"worker exit codes {string.Join(", ", codes)} {firstError}".TrimEnd()
                : null;
            lock (bursts)
                return new RunResult(allocator, processes, failure, group.MaxUsage, usage, [.. bursts]);
        }
        finally
        {
            KillAll(workers);
            foreach (Process w in workers)
            {
                w.WaitForExit();
                w.Dispose();
            }
        }
    }

    private static Process Start(Allocator allocator, Workload load, string worker, string libbuddy, MemoryGroup group, int index, int count, List<double> bursts, List<string> errors)
    {
        // The shell joins the group first, so every page the worker touches is charged to it.
        var start = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in (string[])["-c", "echo $$ > \"$0\" && exec \"$@\"", Path.Combine(group.Path, "cgroup.procs"), worker,
                     allocator.Mode, libbuddy, $"{load.BurstMiB}", $"{load.KeepPercent}", $"{load.PeriodMs}", $"{load.Cycles}",
                     $"{load.PeriodMs * index / count}", $"{index + 1}", $"{allocator.ReportDelayMs}"])
            start.ArgumentList.Add(a);
        foreach ((string name, string value) in allocator.Environment)
            start.Environment[name] = value;
        var process = new Process { StartInfo = start };
        bool cold = true;
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not ['b', 'u', 'r', 's', 't', '_', 'm', 's', ' ', .. var ms])
                return;
            // Every allocator faults its first burst in: only the warm ones tell them apart.
            if (cold)
                cold = false;
            else
                lock (bursts)
                    bursts.Add(double.Parse(ms, CultureInfo.InvariantCulture));
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (!string.IsNullOrEmpty(e.Data))
                lock (errors)
                    errors.Add(e.Data);
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static void KillAll(List<Process> workers)
    {
        foreach (Process w in workers)
        {
            try
            {
                if (!w.HasExited)
                    w.Kill();
            }
            catch (InvalidOperationException)
            {
                // Exited between the check and the kill.
            }
        }
    }
}
