using System.Diagnostics;
using System.Globalization;
using Buddy.Interop;

namespace Buddy.Harness;

/// <summary>
/// The bursty workload, each peer in a process of its own so RSS belongs to it alone: bursts of
/// 1-4 MiB buffers, every page touched, all freed, then an idle gap; RSS sampled every 50 ms.
/// </summary>
public static class RssOverTime
{
    public sealed record Trace(string Peer, List<(double Seconds, long Rss)> Samples, long PeakRss, long IdleRss);

    /// <summary>Runs in the child: the workload for one peer, samples on standard output.</summary>
    public static unsafe int RunChild(string peerName, int burstMiB, int bursts, int idleMs, int delayMs)
    {
        using IPeer? peer = Peers.TryCreate(peerName, TimeSpan.FromMilliseconds(delayMs), out string? missing);
        if (peer is null)
        {
            Console.WriteLine($"missing,{missing}");
            return 0;
        }
        long start = Stopwatch.GetTimestamp();
        long peak = 0;
        using var sampler = new Timer(_ =>
        {
            long rss = ProcessMemory.ResidentBytes();
            Interlocked.Exchange(ref peak, Math.Max(Interlocked.Read(ref peak), rss));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"sample,{Stopwatch.GetElapsedTime(start).TotalSeconds:F3},{rss}"));
        }, null, 0, 50);
        var random = new Random(11);
        for (int burst = 0; burst < bursts; burst++)
        {
            var blocks = new List<(nint Block, nuint Bytes)>();
            for (long live = 0; live < (long)burstMiB << 20;)
            {
                nuint bytes = (nuint)random.Next(1, 5) << 20;
                nint block = peer.Allocate(bytes);
                for (nuint offset = 0; offset < bytes; offset += 4096) *(byte*)(block + (nint)offset) = 1;
                blocks.Add((block, bytes));
                live += (long)bytes;
            }
            foreach (var (block, bytes) in blocks) peer.Free(block, bytes);
            Thread.Sleep(idleMs);
        }
        Console.WriteLine($"idle,{ProcessMemory.ResidentBytes()}");
        return 0;
    }

    /// <summary>Runs every peer's child and collects its trace; a missing peer is reported, not fatal.</summary>
    public static List<Trace> Run(int burstMiB, int bursts, int idleMs, int delayMs, List<string> skipped)
    {
        var traces = new List<Trace>();
        foreach (string peer in Peers.Names)
        {
            using Process child = Child.Start(peer, "--rss-child", peer, $"{burstMiB}", $"{bursts}", $"{idleMs}", $"{delayMs}");
            var samples = new List<(double, long)>();
            long idle = 0;
            string? line;
            while ((line = child.StandardOutput.ReadLine()) is not null)
            {
                string[] parts = line.Split(',');
                if (parts[0] == "sample") samples.Add((double.Parse(parts[1], CultureInfo.InvariantCulture), long.Parse(parts[2], CultureInfo.InvariantCulture)));
                else if (parts[0] == "idle") idle = long.Parse(parts[1], CultureInfo.InvariantCulture);
                else if (parts[0] == "missing") skipped.Add($"{peer}: {parts[1]}");
            }
            child.WaitForExit();
            if (samples.Count > 0 && idle > 0) traces.Add(new Trace(peer, samples, samples.Max(s => s.Item2), idle));
        }
        return traces;
    }

    public static void WriteCsv(IEnumerable<Trace> traces, string path)
    {
        using var writer = new StreamWriter(path);
        writer.WriteLine("peer,seconds,rss_bytes");
        foreach (Trace trace in traces)
            foreach (var (seconds, rss) in trace.Samples)
                writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{trace.Peer},{seconds:F3},{rss}"));
    }

    public static void Plot(IEnumerable<Trace> traces, string path, string title)
    {
        var plot = new ScottPlot.Plot();
        foreach (Trace trace in traces)
        {
            var line = plot.Add.Scatter(trace.Samples.Select(s => s.Seconds).ToArray(), trace.Samples.Select(s => s.Rss / 1048576.0).ToArray());
            line.LegendText = trace.Peer;
            line.MarkerSize = 0;
            line.LineWidth = trace.Peer == "buddy" ? 3 : 1.5f;
        }
        plot.Title(title);
        plot.XLabel("seconds");
        plot.YLabel("RSS (MiB)");
        plot.ShowLegend(ScottPlot.Alignment.UpperRight);
        plot.SavePng(path, 1000, 560);
    }
}
