using System.Numerics;
using System.Runtime.InteropServices;

namespace Buddy;

/// <summary>
/// The <c>buddy.pool.*</c> counts of one arena's pools of one owner name. Rents and returns add to
/// the stripe of the processor they run on, so threads on different processors never share a cache
/// line; the observable instruments sum the stripes when they are collected, so a listener adds
/// nothing to the rent path.
/// </summary>
internal sealed class PoolCounters(string? owner)
{
    [StructLayout(LayoutKind.Explicit, Size = 128)]
    private struct Stripe
    {
        [FieldOffset(64)] public long RentedBytes;
        [FieldOffset(72)] public long Rents;
    }

    private readonly Stripe[] stripes = new Stripe[(int)BitOperations.RoundUpToPowerOf2((uint)Math.Clamp(Environment.ProcessorCount, 1, 64))];
    private long abandoned;

    /// <summary>The owner name pools of these counts were made with (the <c>buddy.pool.owner</c> tag).</summary>
    public string? Owner { get; } = owner;

    public void Rented(int bytes)
    {
        ref Stripe stripe = ref StripeOfThisProcessor();
        Interlocked.Add(ref stripe.RentedBytes, bytes);
        Interlocked.Increment(ref stripe.Rents);
    }

    public void Returned(int bytes, bool abandonedBlock)
    {
        Interlocked.Add(ref StripeOfThisProcessor().RentedBytes, -bytes);
        if (abandonedBlock) Interlocked.Increment(ref abandoned);
    }

    /// <summary>Bytes rented and not returned (each stripe read once; exact when no rent is in flight).</summary>
    public long RentedBytes
    {
        get
        {
            long bytes = 0;
            foreach (ref Stripe stripe in stripes.AsSpan()) bytes += Volatile.Read(ref stripe.RentedBytes);
            return bytes;
        }
    }

    public long Rents
    {
        get
        {
            long rents = 0;
            foreach (ref Stripe stripe in stripes.AsSpan()) rents += Volatile.Read(ref stripe.Rents);
            return rents;
        }
    }

    public long Abandoned => Interlocked.Read(ref abandoned);

    private ref Stripe StripeOfThisProcessor() => ref stripes[Thread.GetCurrentProcessorId() & (stripes.Length - 1)];
}
