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
    /// <summary>Sections added so far; an allocation that saw no change since its search began may add one.</summary>
    private int sectionsAddedCount;
    private int sectionsRemovedCount;
    /// <summary>Why the last attempt to add a section failed; null when it succeeded. Section lock held.</summary>
    private string? growthFailure;
    /// <summary>Checks for idle sections while sections beyond the start are online. Section lock held.</summary>
    private ITimer? idleTimer;

    /// <summary>The shortest interval between idle checks, so a zero idle time does not spin a timer.</summary>
    private static readonly TimeSpan MinIdleCheck = TimeSpan.FromMilliseconds(10);

    /// <summary>
    /// Takes offline, now, every section added beyond <see cref="Size"/> that is entirely free
    /// (blocks in per-CPU caches are drained home first), ignoring <see cref="ArenaOptions.SectionIdleTime"/>.
    /// A section with a block allocated or mid-report stays. Returns how many went offline.
    /// </summary>
    public int RemoveFreeSections()
    {
        using (gate.Enter()) return RemoveSections(whenIdle: false);
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
    private Zone ZoneOf(uint page) => slots[page >> map.SectionShift]!.ZoneOf(page);

    /// <summary>Builds the section of a free slot and enters it in the slot and zone tables; the caller publishes it.</summary>
    private Section BringOnline(int slot)
    {
        Section section = Section.Create(slot, options, map, pageShift, slot * zonesPerSection, reservation);
        map.SectionBias[slot] = section.Bias;
        foreach (Zone zone in section.Zones) zoneTable[zone.Index] = zone;
        slots[slot] = section;
        return section;
    }

    /// <summary>
    /// Adds a section for an allocation that found nothing free. Returns true when the caller should
    /// search again: a section was added, by this call or by another since <paramref name="sectionsSeen"/>.
    /// </summary>
    private bool TryGrow(int sectionsSeen)
    {
        if (options.MaximumSections == options.StartSections) return false;
        lock (sectionLock)
        {
            if (Volatile.Read(ref sectionsAddedCount) != sectionsSeen) return true;
            int slot = Array.IndexOf(slots, null);
            if (slot < 0) return false;
            Section section;
            try
            {
                section = BringOnline(slot);
            }
            catch (OutOfMemoryException e)
            {
                growthFailure = e.Message;
                return false;
            }
            growthFailure = null;
            online = new SectionSet(online.BySlot.Append(section));
            // After the publish: a search that sees the new count also sees the new section.
            Interlocked.Increment(ref sectionsAddedCount);
            StartIdleTimer();
            return true;
        }
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
            for (int i = sections.Length - 1; i >= 0 && sections[i].Slot >= options.StartSections; i--)
            {
                Section section = sections[i];
                bool free = PagesInUse(section) == 0;
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

    /// <summary>Pages of the section allocated to users, not counting per-CPU caches (racy read).</summary>
    private long PagesInUse(Section section)
    {
        long pages = 0;
        foreach (Zone zone in section.Zones) pages += Volatile.Read(ref zone.AllocatedPages) - CachedPagesOf(zone);
        return pages;
    }

    /// <summary>
    /// Isolates the section, unpublishes it, then gives its memory back (Linux's offline_pages). Fails,
    /// changing nothing, if anything in it is allocated, cached per CPU or mid-report. Section lock held.
    /// </summary>
    private bool TryOffline(Section section)
    {
        foreach (Zone zone in section.Zones)
        {
            if (CachedPagesOf(zone) == 0) continue;
            DrainCaches();
            break;
        }
        if (!section.TryIsolate()) return false;
        online = new SectionSet(online.BySlot.Where(s => s != section));
        slots[section.Slot] = null;
        foreach (Zone zone in section.Zones) zoneTable[zone.Index] = null;
        section.Release(map);
        Interlocked.Increment(ref sectionsRemovedCount);
        return true;
    }

    private void StartIdleTimer()
    {
        if (idleTimer is not null || options.SectionIdleTime == Timeout.InfiniteTimeSpan) return;
        TimeSpan period = options.SectionIdleTime / 4 < MinIdleCheck ? MinIdleCheck : options.SectionIdleTime / 4;
        idleTimer = time.CreateTimer(static state => ((BuddyArena)state!).OnIdleCheck(), this, period, period);
    }

    private void StopIdleTimer()
    {
        idleTimer?.Dispose();
        idleTimer = null;
    }

    /// <summary>The idle timer's tick: a tick that finds the arena disposed does nothing.</summary>
    private void OnIdleCheck()
    {
        if (!gate.TryEnter(out OperationGate.Scope scope)) return;
        using (scope) RemoveSections(whenIdle: true);
    }
}
