namespace Buddy.Native;

/// <summary>
/// buddy_arena handles: a slot index and the slot's generation, packed in one pointer-sized value.
/// Destroying an arena bumps its slot's generation and frees the slot for reuse, so the table holds
/// no more slots than arenas ever alive at once, and a destroyed handle, even after its slot was
/// reused, no longer matches and answers BUDDY_E_DISPOSED.
/// </summary>
internal static class ArenaHandles
{
    /// <summary>A slot's arena, or null with the generation a destroyed handle carried; replaced whole, so one read is consistent.</summary>
    private sealed record Slot(NativeArena? Arena, uint Generation);

    private static readonly Lock Gate = new();
    private static readonly Stack<int> FreeSlots = new();
    private static volatile Slot[] slots = [];

    public enum Lookup
    {
        Found,
        Destroyed,
        NotAHandle,
    }

    /// <summary>Stores <paramref name="arena"/> and returns its handle.</summary>
    public static nint Add(NativeArena arena)
    {
        // A handle packs a 32-bit slot and a 32-bit generation: buddy_arena_create refuses 32-bit processes.
        lock (Gate)
        {
            if (!FreeSlots.TryPop(out int index))
            {
                index = slots.Length;
                Slot[] grown = new Slot[Math.Max(8, slots.Length * 2)];
                slots.CopyTo(grown, 0);
                for (int i = grown.Length - 1; i > index; i--) FreeSlots.Push(i);
                slots = grown;
            }
            // Generations start at 1 and skip 0 on wrap, so no handle is 0 (NULL).
            uint generation = slots[index] is { } old ? (old.Generation == uint.MaxValue ? 1 : old.Generation + 1) : 1;
            slots[index] = new Slot(arena, generation);
            return Pack(index, generation);
        }
    }

    /// <summary>The arena of a live handle, or null: every call's first step, one array read and one compare.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static NativeArena? Find(nint handle)
    {
        (int index, uint generation) = Unpack(handle);
        Slot[] current = slots;
        // A destroyed slot keeps its generation with no arena; generation 0 is never issued.
        return (uint)index < (uint)current.Length && current[index] is { } slot && slot.Generation == generation ? slot.Arena : null;
    }

    /// <summary>Finds the arena of a live handle, or says why there is none.</summary>
    public static Lookup TryGet(nint handle, out NativeArena? arena)
    {
        arena = null;
        (int index, uint generation) = Unpack(handle);
        Slot[] current = slots;
        if (generation == 0 || (uint)index >= (uint)current.Length || current[index] is not { } slot) return Lookup.NotAHandle;
        if (slot.Generation == generation && slot.Arena is not null)
        {
            arena = slot.Arena;
            return Lookup.Found;
        }
        // A generation this slot has had (or an older one) was a real handle, now destroyed.
        return generation <= slot.Generation ? Lookup.Destroyed : Lookup.NotAHandle;
    }

    /// <summary>Retires a live handle; false when it was not live (already destroyed by a racing call).</summary>
    public static bool Remove(nint handle, NativeArena arena)
    {
        (int index, uint generation) = Unpack(handle);
        lock (Gate)
        {
            if (slots[index] is not { } slot || slot.Generation != generation || !ReferenceEquals(slot.Arena, arena)) return false;
            slots[index] = new Slot(null, generation);
            FreeSlots.Push(index);
            return true;
        }
    }

    private static nint Pack(int index, uint generation) => (nint)(((long)generation << 32) | (uint)index);

    private static (int Index, uint Generation) Unpack(nint handle) => ((int)(uint)(long)handle, (uint)((long)handle >> 32));
}
