namespace Buddy.Cli.Workloads;

/// <summary>A live block of a stress run and the tag its pattern is made of.</summary>
public readonly record struct LiveBlock(nint Address, long Bytes, long Tag);

/// <summary>
/// Writes a block's tag over its first 16 KiB and into the first word of every page, so that an
/// overlap, a stray write or a page dropped while live shows up as a foreign word.
/// </summary>
public static unsafe class BlockPattern
{
    private const int DenseBytes = 16 << 10;
    private const int Page = 4096;

    public static void Stamp(LiveBlock block)
    {
        new Span<long>((void*)block.Address, (int)(Math.Min(block.Bytes, DenseBytes) / 8)).Fill(block.Tag);
        for (long offset = DenseBytes; offset < block.Bytes; offset += Page)
            *(long*)(block.Address + (nint)offset) = block.Tag ^ offset;
    }

    public static bool Verify(LiveBlock block, out string? damage)
    {
        var dense = new ReadOnlySpan<long>((void*)block.Address, (int)(Math.Min(block.Bytes, DenseBytes) / 8));
        int bad = dense.IndexOfAnyExcept(block.Tag);
        if (bad >= 0)
        {
            damage = $"block at 0x{block.Address:x}: word {bad} is 0x{dense[bad]:x}, expected 0x{block.Tag:x}";
            return false;
        }
        for (long offset = DenseBytes; offset < block.Bytes; offset += Page)
        {
            long word = *(long*)(block.Address + (nint)offset);
            if (word != (block.Tag ^ offset))
            {
                damage = $"block at 0x{block.Address:x}: page at +{offset} holds 0x{word:x}, expected 0x{block.Tag ^ offset:x}";
                return false;
            }
        }
        damage = null;
        return true;
    }

    public static bool IsZero(nint address, long bytes)
    {
        for (long offset = 0; offset < bytes; offset += int.MaxValue & ~7)
        {
            int length = (int)Math.Min(bytes - offset, int.MaxValue & ~7);
            if (new ReadOnlySpan<byte>((void*)(address + (nint)offset), length).IndexOfAnyExcept((byte)0) >= 0) return false;
        }
        return true;
    }
}
