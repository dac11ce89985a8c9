using System.Diagnostics;

namespace Buddy;

/// <summary>Taking a zone out of service before its section goes offline (Linux's page isolation).</summary>
internal sealed unsafe partial class Zone
{
    /// <summary>The pageblock types before isolation, to restore them if the offline is abandoned.</summary>
    private Migratetype[]? typesBeforeIsolation;

    /// <summary>
    /// True once the zone is out of service: nothing is taken from it and nothing reported from it.
    /// Written under the lock; an offline zone stays isolated for good.
    /// </summary>
    public volatile bool Isolated;

    /// <summary>
    /// Isolates the zone if all of its memory is free in it: nothing allocated, cached by a thread or
    /// mid-report. Its pageblocks become <see cref="Migratetypes.Isolate"/> and its free blocks move
    /// to the Isolate lists, which no allocation and no fallback reads.
    /// </summary>
    public bool TryIsolate()
    {
        AssertLocked();
        Debug.Assert(!Isolated, "a zone is isolated once");
        if (AllocatedPages != 0 || ReportingPages != 0) return false;
        uint firstBlock = StartPage >> map.PageblockOrder, blocks = (uint)(Pages >> map.PageblockOrder);
        typesBeforeIsolation = new Migratetype[blocks];
        for (uint i = 0; i < blocks; i++) typesBeforeIsolation[i] = map.PageblockTypes[firstBlock + i];
        for (uint i = 0; i < blocks; i++) map.PageblockTypes[firstBlock + i] = Migratetypes.Isolate;
        for (int t = 0; t < Migratetypes.Count; t++)
            if ((Migratetype)t != Migratetypes.Isolate) MoveList((Migratetype)t, Migratetypes.Isolate);
        Isolated = true;
        return true;
    }

    /// <summary>Puts an isolated zone back in service as it was.</summary>
    public void UndoIsolation()
    {
        AssertLocked();
        Debug.Assert(Isolated && typesBeforeIsolation is not null, "only an isolated zone comes back");
        uint firstBlock = StartPage >> map.PageblockOrder;
        for (uint i = 0; i < typesBeforeIsolation.Length; i++) map.PageblockTypes[firstBlock + i] = typesBeforeIsolation[i];
        typesBeforeIsolation = null;
        Isolated = false;
        MoveList(Migratetypes.Isolate, to: null);
    }

    /// <summary>
    /// Moves every block on <paramref name="from"/>'s lists to <paramref name="to"/>'s (null: to its
    /// pageblock's type), keeping each block's memory state.
    /// </summary>
    private void MoveList(Migratetype from, Migratetype? to)
    {
        for (int order = 0; order <= map.MaxOrder; order++)
        {
            uint page;
            while ((page = ListHead(order, from)) != PageDescriptor.None)
            {
                PageFlags state = map[page].Flags & PageStates.Memory;
                Unlink(page);
                AddFree(page, order, to ?? map.PageblockType(page), state, map[page].FreedInRound);
            }
        }
    }
}
