using System.CommandLine;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using Buddy.Reporting;
using Buddy.Reporting.Devices;

namespace Buddy.Cli;

/// <summary>
/// `buddy squeeze`: a burst into an arena that is then freed, followed at once by as much memory
/// again from outside the arena, touched a step at a time: a neighbour's burst, in one process.
/// Under a memory cap it lives only if the freed arena memory goes back before the cap is reached,
/// which, with the reporter's delay alone, it does not.
/// </summary>
internal static class SqueezeCommand
{
    public static Command Create()
    {
        var burst = new Option<int>("--burst") { Description = "Arena memory allocated, touched and freed, MiB.", DefaultValueFactory = _ => 200 };
        var outside = new Option<int>("--outside") { Description = "Memory then taken from outside the arena, MiB.", DefaultValueFactory = _ => 160 };
        var step = new Option<int>("--step") { Description = "Outside memory touched per step, MiB.", DefaultValueFactory = _ => 4 };
        var stepMs = new Option<int>("--step-ms") { Description = "Pause between steps, ms.", DefaultValueFactory = _ => 10 };
        var delay = new Option<int>("--delay-ms") { Description = "Reporter delay, ms.", DefaultValueFactory = _ => 3_600_000 };
        var pressure = new Option<bool>("--pressure") { Description = "Listen to memory pressure (every source); off: the delay alone.", DefaultValueFactory = _ => true };
        var hintMs = new Option<int>("--hint-ms") { Description = "Hint delay, ms: free memory is offered to the kernel (MADV_FREE) this long after it is freed; -1: no hint tier.", DefaultValueFactory = _ => -1 };
        var pollMs = new Option<int>("--poll-ms") { Description = "Pressure poll interval, ms.", DefaultValueFactory = _ => 50 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var command = new Command("squeeze", "Frees a burst and takes as much again from outside the arena: survives a cap only if the burst goes back in time.")
        {
            burst, outside, step, stepMs, delay, pressure, hintMs, pollMs, json,
        };
        command.SetAction(parse =>
        {
            long burstBytes = (long)parse.GetValue(burst) << 20, outsideBytes = (long)parse.GetValue(outside) << 20, stepBytes = (long)parse.GetValue(step) << 20;
            if (burstBytes <= 0 || outsideBytes < 0 || stepBytes <= 0 || parse.GetValue(stepMs) < 0)
            {
                Console.Error.WriteLine("--burst and --step must be positive; --outside and --step-ms not negative.");
                return 2;
            }
            long arenaBytes = (burstBytes + (4L << 20) - 1) / (4L << 20) * (4L << 20);
            using var arena = new BuddyArena(new ArenaOptions { Name = "squeeze", Size = arenaBytes, Backing = ArenaBacking.Reserve });
            using var reporter = new PageReporter(arena, ReportingDevices.CreateDefault(), new PageReporterOptions
            {
                Delay = TimeSpan.FromMilliseconds(parse.GetValue(delay)),
                IdleTime = Timeout.InfiniteTimeSpan,
                PressureSources = parse.GetValue(pressure) ? PressureSources.All : PressureSources.None,
                PressurePollInterval = TimeSpan.FromMilliseconds(parse.GetValue(pollMs)),
                HintDelay = parse.GetValue(hintMs) < 0 ? Timeout.InfiniteTimeSpan : TimeSpan.FromMilliseconds(parse.GetValue(hintMs)),
            });
            reporter.Start();
            var clock = Stopwatch.StartNew();
            Burst(arena, burstBytes);
            var held = new List<nint>();
            try
            {
                for (long taken = 0; taken < outsideBytes; taken += stepBytes)
                {
                    held.Add(TouchOutside(stepBytes));
                    Thread.Sleep(parse.GetValue(stepMs));
                }
                ReporterStatistics stats = reporter.GetStatistics();
                var result = new
                {
                    survived = true,
                    seconds = Math.Round(clock.Elapsed.TotalSeconds, 3),
                    burst_bytes = burstBytes,
                    outside_bytes = outsideBytes,
                    reported_bytes = arena.GetStatistics().ReportedBytes,
                    hinted_bytes = stats.HintedBytes,
                    pressure_signals = stats.PressureSignals,
                    pressure_passes = stats.PressurePasses,
                };
                Console.WriteLine(parse.GetValue(json) ? JsonSerializer.Serialize(result)
                    : $"survived: {outsideBytes >> 20} MiB outside after {burstBytes >> 20} MiB freed; {result.reported_bytes >> 20} MiB reported in {result.pressure_passes} pressure passes ({result.pressure_signals} signals), {result.hinted_bytes >> 20} MiB hinted");
                return 0;
            }
            finally
            {
                held.ForEach(FreeOutside);
            }
        });
        return command;
    }

    /// <summary>Memory from the C heap, every page written: charged to the process at once.</summary>
    private static unsafe nint TouchOutside(long bytes)
    {
        void* memory = NativeMemory.Alloc((nuint)bytes);
        new Span<byte>(memory, (int)bytes).Fill(0x5A);
        return (nint)memory;
    }

    private static unsafe void FreeOutside(nint memory) => NativeMemory.Free((void*)memory);

    /// <summary>Allocates the burst in 4 MiB blocks, touches every page, frees it all: resident, free, unreported.</summary>
    private static unsafe void Burst(BuddyArena arena, long bytes)
    {
        var blocks = new List<nint>();
        for (long taken = 0; taken < bytes; taken += 4L << 20)
        {
            nint block = arena.Allocate(arena.MaxOrder);
            new Span<byte>((void*)block, 4 << 20).Fill(0xA5);
            blocks.Add(block);
        }
        blocks.ForEach(arena.Free);
    }
}
