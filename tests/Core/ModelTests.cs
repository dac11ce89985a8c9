using CsCheck;
using Buddy.Reporting;
using Buddy.Reporting.Testing;

namespace Buddy.Tests;

/// <summary>
/// Single-threaded op sequences, up to thousands of steps, against a model of allocated ranges.
/// Bad calls are part of the sequences: each must be refused and change nothing.
/// </summary>
public unsafe class ModelTests
{
    private enum Op { Allocate, AllocateBytes, AllocateZeroed, Free, FreeWithSize, DoubleFree, WrongSize, ForeignPointer, Report, Hint, ReportHinted }

    private readonly record struct Step(Op Op, int Order, int Type, int Pick);

    private static readonly Gen<Step> StepGen = Gen.Select(
        Gen.Frequency((6, Gen.Const(Op.Allocate)), (2, Gen.Const(Op.AllocateBytes)), (2, Gen.Const(Op.AllocateZeroed)),
            (6, Gen.Const(Op.Free)), (2, Gen.Const(Op.FreeWithSize)), (1, Gen.Const(Op.DoubleFree)),
            (1, Gen.Const(Op.WrongSize)), (1, Gen.Const(Op.ForeignPointer)), (1, Gen.Const(Op.Report)),
            (1, Gen.Const(Op.Hint)), (1, Gen.Const(Op.ReportHinted))),
        Gen.Int[0, 8], Gen.Int[0, 3], Gen.Int[0, 1 << 20], (op, order, type, pick) => new Step(op, order, type, pick));

    private sealed class Model
    {
        public readonly SortedDictionary<long, (long Bytes, byte Fill)> Live = new();
        public readonly List<long> Freed = [];
        public long Pages => Live.Values.Sum(v => v.Bytes) / 4096;
    }

    [Fact]
    public void Long_operation_sequences_match_the_model_and_bad_calls_change_nothing()
    {
        StepGen.Array[1, 2000].Sample(steps =>
        {
            using var arena = new BuddyArena(new ArenaOptions { ValidateOnFree = true, Size = 8L << 20, ZoneCount = 1, PoisonFreedMemory = true });
            using var reporter = new PageReporter(arena, new RecordingDevice(), new PageReporterOptions { Delay = TimeSpan.FromHours(1), ReportOrder = 3 });
            var model = new Model();
            byte fill = 0;
            foreach (Step step in steps) Apply(arena, reporter, model, step, ++fill);
            foreach (long offset in model.Live.Keys.ToList()) arena.Free(arena.BaseAddress + (nint)offset);
            arena.CheckInvariants();
            Assert.Equal(arena.TotalPages, arena.GetStatistics().FreePages);
        }, iter: 25);
    }

    private static void Apply(BuddyArena arena, PageReporter reporter, Model model, Step step, byte fill)
    {
        switch (step.Op)
        {
            case Op.Allocate or Op.AllocateBytes or Op.AllocateZeroed:
                Allocate(arena, model, step, fill);
                break;
            case Op.Free or Op.FreeWithSize when model.Live.Count > 0:
                var (offset, (bytes, expected)) = model.Live.ElementAt(step.Pick % model.Live.Count);
                nint address = arena.BaseAddress + (nint)offset;
                Assert.True(new ReadOnlySpan<byte>((void*)address, (int)bytes).IndexOfAnyExcept(expected) < 0, "a live block changed");
                if (step.Op == Op.Free) arena.Free(address);
                else arena.Free(address, bytes - step.Pick % 4096);
                model.Live.Remove(offset);
                model.Freed.Add(offset);
                break;
            case Op.DoubleFree when model.Freed.Count > 0:
                long freed = model.Freed[step.Pick % model.Freed.Count];
                if (!model.Live.ContainsKey(freed))
                    Arenas.AssertRejected<InvalidAddressException>(arena, () => arena.Free(arena.BaseAddress + (nint)freed), "address");
                break;
            case Op.WrongSize when model.Live.Count > 0:
                var (at, (size, _)) = model.Live.ElementAt(step.Pick % model.Live.Count);
                long wrong = size == 4096 ? 8192 : size / 2;
                Arenas.AssertRejected<ArgumentException>(arena, () => arena.Free(arena.BaseAddress + (nint)at, wrong), "does not match");
                break;
            case Op.ForeignPointer:
                Arenas.AssertRejected<InvalidAddressException>(arena, () => arena.Free(arena.BaseAddress - 4096 * (1 + step.Pick % 64)), "outside the arena");
                break;
            case Op.Report:
                reporter.ReportNow();
                Assert.Equal(0, arena.UnreportedFreeBytes(3));
                break;
            case Op.Hint:
                // As MADV_FREE may leave a page as it was or hand back a zero page: half of each block scribbled.
                arena.ReportFreeBlocks(0, step.Order % 4, ReportingMode.Isolate, new FreeBlock[8], blocks =>
                {
                    foreach (FreeBlock b in blocks) new Span<byte>((void*)b.Address, (int)b.Length / 2).Fill(0xEE);
                    return ReportOutcome.Hinted;
                }, agedOnly: false, FreeBlockSelection.Fresh);
                break;
            case Op.ReportHinted:
                long hinted = arena.GetStatistics().HintedBytes;
                arena.ReportFreeBlocks(0, 0, ReportingMode.Isolate, new FreeBlock[8], _ => ReportOutcome.Reported, agedOnly: false, FreeBlockSelection.Hinted);
                // A reported block that merges with a hinted buddy makes a hinted block: never more hinted than before.
                Assert.True(arena.GetStatistics().HintedBytes <= hinted, "reporting hinted blocks added hinted memory");
                break;
        }
        arena.CheckInvariants();
        Assert.Equal(model.Pages, arena.GetStatistics().AllocatedPages);
    }

    private static void Allocate(BuddyArena arena, Model model, Step step, byte fill)
    {
        long request = 4096L << step.Order;
        var type = (Migratetype)step.Type;
        bool ok = step.Op == Op.AllocateBytes
            ? arena.TryAllocateBytes(request - step.Pick % 4096, out nint block, type)
            : arena.TryAllocate(step.Order, out block, type, zeroed: step.Op == Op.AllocateZeroed);
        if (!ok)
        {
            Assert.Equal(0, arena.GetStatistics().FreePagesAtOrAbove(step.Order));
            return;
        }
        long offset = block - arena.BaseAddress;
        Assert.Equal(0, offset % request);
        Assert.DoesNotContain(model.Live, r => r.Key < offset + request && offset < r.Key + r.Value.Bytes);
        if (step.Op == Op.AllocateZeroed)
            Assert.True(new ReadOnlySpan<byte>((void*)block, (int)request).IndexOfAnyExcept((byte)0) < 0, "a zeroed block was not zero");
        new Span<byte>((void*)block, (int)request).Fill(fill);
        model.Live.Add(offset, (request, fill));
        model.Freed.Remove(offset);
    }
}
