using Buddy.Interop;
using System.Runtime.CompilerServices;

namespace Buddy;

/// <summary>
/// Sections (Linux's sparse memory and memory hotplug): the start sections stay online; an
/// allocation that finds nothing free adds one more, up to the maximum; a section added that stays
/// entirely free goes offline, isolated first. One lock serialises adding and removing; allocations
/// on sections already online never take it.
/// </summary>
public sealed unsafe partial class BuddyArena
{
    private readonly Lock sectionLock = new();
    /// <summary>Sections by slot, null where offline. Written under the section lock.</summary>
    private readonly Section?[] slots;
    /// <summary>Zones by index, every slot's; null where offline. Written under the section lock.</summary>
    private readonly Zone?[] zoneTable;
    private readonly int zonesPerSection;
    private volatile SectionSet online;
    /// <summary>
    /// Bumped when a section is added or an offline attempt puts its zones back: an allocation that saw
    /// no change since its search began may add a section; otherwise it searches again.
    /// </summary>
    private int sectionEpoch;
    private int sectionsAddedCount;
    private int sectionsRemovedCount;
    /// <summary>Why the last attempt to add a section failed; null when it succeeded. Section lock held.</summary>
    private string? growthFailure;
    /// <summary>The last failure to add or remove a section, for statistics. Section lock held.</summary>
    private string? sectionFailure;
    /// <summary>The counters of zones gone offline. Section lock held.</summary>
    private OfflineZoneTotals offlineTotals;
    /// <summary>Checks for idle sections while sections beyond the start are online. Section lock held.</summary>
    private ITimer? idleTimer;

    /// <summary>The shortest interval between idle checks, so a zero idle time does not spin a timer.</summary>
    private static readonly TimeSpan MinIdleCheck = TimeSpan.FromMilliseconds(10);
    /// <summary>The longest, well inside what a timer accepts, however long the idle time.</summary>
    private static readonly TimeSpan MaxIdleCheck = TimeSpan.FromHours(1);

    /// <summary>
    /// Takes offline, now, every section added beyond <see cref="Size"/> that is entirely free
    /// (blocks in thread caches are drained home first), ignoring <see cref="ArenaOptions.SectionIdleTime"/>.
    /// A section with a block allocated or mid-report stays. Returns how many went offline.
    /// </summary>
    public int RemoveFreeSections()
    {
        using (gate.Enter()) return RemoveSectionsAndSay(whenIdle: false);
    }

    /// <summary>
    /// Raised after a section was added or taken offline, or could not be (on the thread that tried,
    /// which may be an allocating thread, the idle timer's or the finalizer thread), outside the
    /// arena's locks but inside the call that caused it: a handler must not dispose the arena, which
    /// would wait for that very call. A handler that throws is ignored: logging must not fail an allocation.
    /// </summary>
    public event Action<ArenaSectionEvent>? SectionChanged;

    private void Raise(ArenaSectionEvent happened)
    {
        try
        {
            SectionChanged?.Invoke(happened);
        }
        catch (Exception)
        {
            // A handler's failure is its own; the arena goes on.
        }
    }

    private int RemoveSectionsAndSay(bool whenIdle)
    {
        int removed = RemoveSections(whenIdle);
        if (removed > 0)
        {
            SectionSet set = online;
            Raise(new ArenaSectionEvent(ArenaSectionEventKind.Removed, set.BySlot.Length, set.Bytes, null, removed));
        }
        return removed;
    }

    /// <summary>
    /// The pinned array and range holding the allocated block at <paramref name="address"/>, so it can
    /// travel as array-backed <see cref="Memory{T}"/> (<c>segment.AsMemory()</c>). PinnedArray backing only.
    /// </summary>
    public ArraySegment<byte> GetArraySegment(nint address)
    {
        if (options.Backing != ArenaBacking.PinnedArray)
            throw new InvalidOperationException($"Only blocks of a PinnedArray arena live in arrays; this arena's backing is {options.Backing}.");
        using (gate.Enter())
        {
            uint page = PageOf(address, out Section section);
            ref PageDescriptor d = ref map[page];
            // The caller owns the block: its head reads Head, with this order, until the caller frees it.
            if (Volatile.Read(ref FlagsOf(ref d)) != (uint)PageFlags.Head) throw NotAllocated(address, d.Flags);
            return new ArraySegment<byte>(section.Array!, section.ArrayOffset + (int)(address - section.Base), (int)BytesOf(d.Order));
        }
    }

    /// <summary>The zone of a page of an online section.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Zone ZoneOf(uint page) => slots[map.SlotOf(page)]!.ZoneOf(page);

    /// <summary>Builds the section of a free slot and enters it in the slot and zone tables; the caller publishes it.</summary>
    private Section BringOnline(int slot)
    {
        Section section = Section.Create(slot, options, map, pageShift, slot * zonesPerSection, reservation);
        // Advice only: a kernel without THP, or one that refuses, still gives 4 KiB pages.
        if (options.TransparentHugePages) VirtualMemory.AdviseHugePages(section.Base, (nuint)options.ResolvedSectionSize);
        map.SectionBias[slot] = section.Bias;
        PublishSectionBase(slot, section.Base);
        foreach (Zone zone in section.Zones) zoneTable[zone.Index] = zone;
        slots[slot] = section;
        return section;
    }

    /// <summary>
    /// Adds a section for an allocation that found nothing free. Returns true when the caller should
    /// search again: a section was added, or zones came back, by this call or another since
    /// <paramref name="epochSeen"/>. A request that no fresh section could serve adds nothing.
    /// </summary>
    private bool TryGrow(int epochSeen, int order, bool mayUseReserve)
    {
        if (options.MaximumSections == options.StartSections || !FreshSectionServes(order, mayUseReserve)) return false;
        bool grown = TryAddSection(epochSeen, out ArenaSectionEvent? happened);
        if (happened is not null) Raise(happened);
        return grown;
    }

    private bool TryAddSection(int epochSeen, out ArenaSectionEvent? happened)
    {
        happened = null;
        lock (sectionLock)
        {
            if (Volatile.Read(ref sectionEpoch) != epochSeen) return true;
            int slot = Array.IndexOf(slots, null);
            if (slot < 0) return false;
            Section section;
            try
            {
                section = BringOnline(slot);
            }
            catch (OutOfMemoryException e)
            {
                growthFailure = sectionFailure = e.Message;
                happened = new ArenaSectionEvent(ArenaSectionEventKind.GrowthFailed, online.BySlot.Length, online.Bytes, e.Message);
                return false;
            }
            growthFailure = null;
            online = new SectionSet(online.BySlot.Append(section));
            // After the publish: a search that sees the new epoch also sees the new section.
            Interlocked.Increment(ref sectionEpoch);
            Interlocked.Increment(ref sectionsAddedCount);
            StartIdleTimer();
            happened = new ArenaSectionEvent(ArenaSectionEventKind.Added, online.BySlot.Length, online.Bytes, null);
            return true;
        }
    }

    /// <summary>
    /// Whether a zone of a fresh section could serve the request: not when the block is larger than
    /// what the zone keeps above its HighAtomic reserve, however many sections are added.
    /// </summary>
    private bool FreshSectionServes(int order, bool mayUseReserve)
    {
        Zone largest = online.BySlot[0].Zones[0];
        return (1L << order) <= largest.Pages - (mayUseReserve ? 0 : largest.MinWatermark);
    }

    /// <summary>
    /// Takes offline the added sections that are free (and, when <paramref name="whenIdle"/>, have been
    /// for the idle time), newest slot first. Returns how many went.
    /// </summary>
    private int RemoveSections(bool whenIdle)
    {
        lock (sectionLock)
        {
            int removed = 0;
            Section[] sections = online.BySlot;
            long[] cached = CountCachedPages();
            for (int i = sections.Length - 1; i >= 0 && sections[i].Slot >= options.StartSections; i--)
            {
                Section section = sections[i];
                bool free = PagesInUse(section, cached) == 0;
                // Free but for blocks parked in thread caches: send them home, so any later use of the
                // section must take from its zones and show in its count of takes.
                if (free && section.Zones.Any(z => cached[z.Index] > 0))
                {
                    DrainCaches();
                    cached = CountCachedPages();
                }
                long takes = section.Takes();
                // Free since the last look only if nothing was taken meanwhile: a burst between two looks restarts the clock.
                if (!free) section.FreeSince = null;
                else if (takes != section.TakesSeen || section.FreeSince is null) section.FreeSince = time.GetTimestamp();
                section.TakesSeen = takes;
                if (!free || (whenIdle && time.GetElapsedTime(section.FreeSince!.Value) < options.SectionIdleTime)) continue;
                if (TryOffline(section)) removed++;
            }
            if (online.BySlot.Length == options.StartSections) StopIdleTimer();
            return removed;
        }
    }

    /// <summary>Pages of the section allocated to users, not counting thread caches (racy read).</summary>
    private static long PagesInUse(Section section, long[] cached)
    {
        long pages = 0;
        foreach (Zone zone in section.Zones) pages += Volatile.Read(ref zone.AllocatedPages) - cached[zone.Index];
        return pages;
    }

    /// <summary>Pages in thread caches by zone index, counted with the caches claimed.</summary>
    private long[] CountCachedPages()
    {
        ThreadCache[] all = EnterCaches();
        try
        {
            return CachedPagesByZone(all);
        }
        finally
        {
            ExitCaches(all);
        }
    }

    /// <summary>
    /// Isolates the section, unpublishes it, then gives its memory back (Linux's offline_pages). Fails,
    /// changing nothing, if anything in it is allocated, cached by a thread or mid-report. Section lock held.
    /// </summary>
    private bool TryOffline(Section section)
    {
        long[] cached = CountCachedPages();
        if (section.Zones.Any(z => cached[z.Index] > 0)) DrainCaches();
        if (!section.TryIsolate())
        {
            // Allocations that met an isolated zone meanwhile may have found nothing: let them look again.
            Interlocked.Increment(ref sectionEpoch);
            return false;
        }
        online = new SectionSet(online.BySlot.Where(s => s != section));
        PublishSectionBase(section.Slot, 0);
        // Isolated, its zones count nothing more: their totals stay with the arena.
        foreach (Zone zone in section.Zones)
            lock (zone.Lock) offlineTotals.Add(zone);
        Interlocked.Increment(ref sectionsRemovedCount);
        // The slot is free for reuse only once the section has let go of everything: a release that
        // fails leaves the slot taken (and its memory leaked) rather than half reset.
        section.Release(map);
        slots[section.Slot] = null;
        foreach (Zone zone in section.Zones) zoneTable[zone.Index] = null;
        return true;
    }

    private void StartIdleTimer()
    {
        if (idleTimer is not null || options.SectionIdleTime == Timeout.InfiniteTimeSpan) return;
        TimeSpan period = TimeSpan.FromTicks(Math.Clamp(options.SectionIdleTime.Ticks / 4, MinIdleCheck.Ticks, MaxIdleCheck.Ticks));
        idleTimer = time.CreateTimer(static state => ((BuddyArena)state!).OnIdleCheck(), this, period, period);
    }

    private void StopIdleTimer()
    {
        idleTimer?.Dispose();
        idleTimer = null;
    }

    /// <summary>
    /// The idle timer's tick: a tick that finds the arena disposed does nothing. A failure to take a
    /// section offline must not end the process from a timer or pool thread: the section stays as it
    /// is and the failure is kept for <see cref="ArenaStatistics.LastSectionFailure"/>.
    /// </summary>
    private void OnIdleCheck() => _ = RemoveSectionsInBackground(whenIdle: true);

    /// <summary>
    /// After a collection that left the GC less room under its limit (its heap hard limit in a
    /// container) than the arena's added PinnedArray sections hold, the free ones go offline at once,
    /// on the finalizer thread that runs this, so the next collection can take their arrays back for
    /// the managed heap: the rule the cgroup pressure source applies to free memory. False once the
    /// arena is disposed: the callback ends.
    /// </summary>
    private bool AfterCollection()
    {
        if (IsDisposed) return false;
        long added = online.Bytes - options.Size;
        if (added > 0)
        {
            GCMemoryInfo info = GC.GetGCMemoryInfo();
            if (info.TotalAvailableMemoryBytes - info.TotalCommittedBytes < added && RemoveSectionsInBackground(whenIdle: false) > 0)
                ThreadPool.UnsafeQueueUserWorkItem(static _ => GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true), null);
        }
        return true;
    }

    private int RemoveSectionsInBackground(bool whenIdle)
    {
        if (!gate.TryEnter(out OperationGate.Scope scope)) return 0;
        using (scope)
        {
            try
            {
                return RemoveSectionsAndSay(whenIdle);
            }
            catch (Exception e) when (e is OutOfMemoryException or InvalidOperationException)
            {
                string failure = $"Taking a section offline failed: {e.Message}";
                lock (sectionLock) sectionFailure = failure;
                SectionSet set = online;
                Raise(new ArenaSectionEvent(ArenaSectionEventKind.OfflineFailed, set.BySlot.Length, set.Bytes, failure));
                return 0;
            }
        }
    }
}

/// <summary>What happened to the arena's sections.</summary>
public enum ArenaSectionEventKind
{
    /// <summary>A section was brought online for an allocation that found nothing free.</summary>
    Added,
    /// <summary>Free added sections went offline (idle, <see cref="BuddyArena.RemoveFreeSections"/>, or memory pressure).</summary>
    Removed,
    /// <summary>The backing could not provide a section: the arena did not grow, and allocations it would have served fail.</summary>
    GrowthFailed,
    /// <summary>The idle timer could not take a section offline; the section stays as it was.</summary>
    OfflineFailed,
}

/// <param name="Kind">What happened.</param>
/// <param name="OnlineSections">Sections online afterwards.</param>
/// <param name="OnlineBytes">Bytes online afterwards.</param>
/// <param name="Failure">Why it failed, for the failure kinds.</param>
/// <param name="Count">Sections it concerns (more than one when several went offline at once).</param>
public sealed record ArenaSectionEvent(ArenaSectionEventKind Kind, int OnlineSections, long OnlineBytes, string? Failure, int Count = 1);
