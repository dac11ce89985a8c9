using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Buddy;

/// <summary>
/// Counts operations in flight, striped by processor so entering stays uncontended, so that
/// disposal can wait for them before the memory goes away.
/// </summary>
internal sealed class OperationGate
{
    [StructLayout(LayoutKind.Explicit, Size = 64)]
    private struct PaddedCounter
    {
        [FieldOffset(0)] public int Value;
    }

    private readonly PaddedCounter[] stripes;
    private readonly int mask;
    private volatile bool closed;

    public OperationGate()
    {
        int count = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Environment.ProcessorCount);
        stripes = new PaddedCounter[count];
        mask = count - 1;
    }

    public bool IsClosed => closed;

    /// <summary>Enters, or throws if closed; the scope leaves when disposed (<c>using (gate.Enter())</c>).</summary>
    public Scope Enter() => TryEnter(out Scope scope)
        ? scope
        : throw new ObjectDisposedException(nameof(BuddyArena), "The arena has been disposed.");

    /// <summary>Enters unless closed: for background work, which has nothing to do once the arena is gone.</summary>
    public bool TryEnter(out Scope scope)
    {
        int stripe = Thread.GetCurrentProcessorId() & mask;
        // Interlocked is a full fence: either Close sees this count, or this thread sees closed.
        Interlocked.Increment(ref stripes[stripe].Value);
        if (closed)
        {
            Interlocked.Decrement(ref stripes[stripe].Value);
            scope = default;
            return false;
        }
        scope = new Scope(this, stripe);
        return true;
    }

    /// <summary>Closes the gate and waits until every operation that entered has left.</summary>
    public void Close()
    {
        closed = true;
        Interlocked.MemoryBarrier();
        var wait = new SpinWait();
        while (InFlight() != 0) wait.SpinOnce();
    }

    private void Exit(int stripe)
    {
        int left = Interlocked.Decrement(ref stripes[stripe].Value);
        // Each scope leaves the stripe it entered, so no stripe goes below zero.
        Debug.Assert(left >= 0, "an exit without an enter");
    }

    private int InFlight()
    {
        int sum = 0;
        for (int i = 0; i < stripes.Length; i++) sum += Volatile.Read(ref stripes[i].Value);
        return sum;
    }

    /// <summary>One operation inside the gate; disposing it leaves exactly once.</summary>
    public readonly ref struct Scope(OperationGate gate, int stripe)
    {
        public void Dispose() => gate.Exit(stripe);
    }
}
