using System.Diagnostics;

namespace Buddy;

/// <summary>Free page reporting support: isolation, put-back and waiting for blocks mid-report.</summary>
internal sealed partial class Zone
{
    /// <summary>Blocks unlinked for a report (Isolate mode), so waiting allocations can find one.</summary>
    private readonly List<uint> isolated = [];

    /// <summary>The isolated blocks' first pages (zone lock held), for the invariant checker.</summary>
    public IReadOnlyList<uint> IsolatedBlocks => isolated;

    /// <summary>Free pages mid-report, unlinked or in place.</summary>
    public long ReportingPages;
    /// <summary>Per order, pages of hinted blocks mid-report in place: still in their list's hinted run, and not counted as hinted.</summary>
    private long[]? hintedInPlace;
    public long SpinWaits;
    /// <summary>Time spent waiting, in <see cref="TimeSpan"/> ticks.</summary>
    public long SpinTicks;
    public long LongestSpinTicks;

    /// <summary>
    /// Unreported free pages in blocks of <paramref name="minOrder"/> or larger, not counting pristine
    /// ones. Blocks mid-report are not reported yet: listed ones are counted with their list, and
    /// isolated ones are added here.
    /// </summary>
    public long UnreportedPages(int minOrder)
    {
        AssertLocked();
        long pages = 0;
        if (Isolated) return 0;
        for (int order = minOrder; order <= map.MaxOrder; order++)
            for (int t = 0; t < Migratetypes.Count; t++)
                pages += (BlockCount(order, (Migratetype)t) - ReportedCount(order, (Migratetype)t)) << order;
        foreach (uint page in isolated)
            if (map[page].Order >= minOrder) pages += 1L << map[page].Order;
        return pages;
    }

    /// <summary>Hinted free pages in listed blocks of <paramref name="minOrder"/> or larger; blocks mid-report, isolated or in place, are not counted.</summary>
    public long HintedPages(int minOrder = 0)
    {
        AssertLocked();
        if (Isolated) return 0;
        long pages = 0;
        for (int order = minOrder; order <= map.MaxOrder; order++)
        {
            for (int t = 0; t < Migratetypes.Count; t++)
                pages += HintedCount(order, (Migratetype)t) << order;
            if (hintedInPlace is not null) pages -= hintedInPlace[order];
        }
        return pages;
    }

    /// <summary>Adds every hinted block not mid-report, as (first page, order), to <paramref name="blocks"/>.</summary>
    public void CollectHinted(List<(uint Page, int Order)> blocks)
    {
        AssertLocked();
        if (Isolated) return;
        for (int order = 0; order <= map.MaxOrder; order++)
            for (int t = 0; t < Migratetypes.Count; t++)
                // The hinted run starts at its pointer and ends where the reported run (or the list) does;
                // a block reported in place stays in it, flagged, while the device drops its pages.
                for (uint page = FirstHinted(order, (Migratetype)t); page != PageDescriptor.None && (map[page].Flags & PageFlags.Hinted) != 0; page = map[page].Next)
                    if ((map[page].Flags & PageFlags.Reporting) == 0) blocks.Add((page, order));
    }

    /// <summary>Whether a fresh listed block of <paramref name="minOrder"/> or larger was freed in the current round.</summary>
    public bool HasYoungBlocks(int minOrder)
    {
        AssertLocked();
        if (Isolated) return false;
        for (int order = minOrder; order <= map.MaxOrder; order++)
            for (int t = 0; t < Migratetypes.Count; t++)
                for (uint page = ListHead(order, (Migratetype)t); page != PageDescriptor.None; page = map[page].Next)
                {
                    ref PageDescriptor d = ref map[page];
                    if ((d.Flags & (PageFlags.Reported | PageFlags.Hinted)) != 0) break;
                    if ((d.Flags & PageFlags.Reporting) == 0 && d.FreedInRound == Round) return true;
                }
        return false;
    }

    /// <summary>
    /// Marks up to <paramref name="batch"/>.Length free blocks of <paramref name="minOrder"/> or larger,
    /// of the runs <paramref name="selection"/> names, as Reporting: unlinked (Isolate mode) or left on
    /// their list (in place). Each list is scanned from the start of those runs to their end.
    /// <paramref name="agedOnly"/> passes over fresh blocks freed in the current <see cref="Round"/>.
    /// </summary>
    public int Isolate(int minOrder, bool inPlace, Span<uint> batch, bool agedOnly = false, FreeBlockSelection selection = FreeBlockSelection.Unreported)
    {
        AssertLocked();
        int count = 0;
        if (Isolated) return 0;
        // The run where the scan stops: reported blocks for the report tier, hinted ones too for the hint tier.
        PageFlags stopAt = selection == FreeBlockSelection.Fresh ? PageFlags.Reported | PageFlags.Hinted : PageFlags.Reported;
        for (int order = minOrder; order <= map.MaxOrder && count < batch.Length; order++)
        {
            for (int t = 0; t < Migratetypes.Count && count < batch.Length; t++)
            {
                if (!Migratetypes.IsAllocatable((Migratetype)t)) continue;
                uint page = selection == FreeBlockSelection.Hinted ? FirstHinted(order, (Migratetype)t) : ListHead(order, (Migratetype)t);
                while (page != PageDescriptor.None && count < batch.Length)
                {
                    ref PageDescriptor d = ref map[page];
                    uint next = d.Next;
                    if ((d.Flags & stopAt) != 0) break;
                    bool young = agedOnly && d.FreedInRound == Round && (d.Flags & PageFlags.Hinted) == 0;
                    if ((d.Flags & PageFlags.Reporting) == 0 && !young)
                    {
                        if (inPlace)
                        {
                            d.Flags |= PageFlags.Reporting;
                            if ((d.Flags & PageFlags.Hinted) != 0) (hintedInPlace ??= new long[map.MaxOrder + 1])[order] += 1L << order;
                        }
                        else
                        {
                            Unlink(page);
                            d.Flags = PageFlags.Reporting | (d.Flags & PageStates.Memory);
                            isolated.Add(page);
                        }
                        ReportingPages += 1L << order;
                        batch[count++] = page;
                    }
                    page = next;
                }
            }
        }
        return count;
    }

    /// <summary>
    /// Puts back blocks from <see cref="Isolate"/>. Reported ones go to their list's tail marked
    /// Reported (and Zeroed when the device zeroes), hinted ones to the end of the hinted run. After
    /// a failed call nothing is known of the memory: the device may have dropped part of it, so
    /// poison and zero promises are gone, and so is a hint the block had (it is offered again).
    /// </summary>
    public void PutBack(ReadOnlySpan<uint> batch, ReportOutcome outcome)
    {
        AssertLocked();
        PageFlags memory = outcome switch
        {
            ReportOutcome.ReportedZeroed => PageFlags.Reported | PageFlags.Zeroed,
            ReportOutcome.Reported => PageFlags.Reported,
            ReportOutcome.Hinted => PageFlags.Hinted,
            _ => PageFlags.None,
        };
        foreach (uint page in batch)
        {
            ref PageDescriptor d = ref map[page];
            Debug.Assert((d.Flags & PageFlags.Reporting) != 0, "only a block mid-report is put back");
            if ((d.Flags & PageFlags.Buddy) != 0)
            {
                if ((d.Flags & PageFlags.Hinted) != 0) hintedInPlace![d.Order] -= 1L << d.Order;
                Unlink(page);
            }
            else isolated.Remove(page);
            d.Flags = PageFlags.None;
            ReportingPages -= 1L << d.Order;
            MergeAndAdd(page, d.Order, memory, d.FreedInRound);
        }
    }

    /// <summary>An isolated block that could serve an allocation of <paramref name="order"/>, or None.</summary>
    public uint FindIsolated(int order)
    {
        AssertLocked();
        foreach (uint page in isolated)
            if (map[page].Order >= order) return page;
        return PageDescriptor.None;
    }

    public void RecordSpin(long ticks)
    {
        AssertLocked();
        SpinWaits++;
        SpinTicks += ticks;
        LongestSpinTicks = Math.Max(LongestSpinTicks, ticks);
    }
}
