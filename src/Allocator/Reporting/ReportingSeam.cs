namespace Buddy;

/// <summary>How blocks are held while a reporting device works on them.</summary>
public enum ReportingMode
{
    /// <summary>Unlinked from the free lists: allocation never meets them unless nothing else is free.</summary>
    Isolate,
    /// <summary>Left on the free lists: an allocation that picks one waits for the report to finish.</summary>
    InPlace,
}

/// <summary>A free block handed to a reporting device: its address and length in bytes.</summary>
public readonly record struct FreeBlock(nint Address, long Length);

/// <summary>Which free blocks a report call isolates.</summary>
internal enum FreeBlockSelection
{
    /// <summary>Every block not reported yet, fresh or hinted (the report tier).</summary>
    Unreported,
    /// <summary>Hinted blocks only: the report tier when a hint tier runs before it.</summary>
    Hinted,
    /// <summary>Fresh blocks only, neither hinted nor reported (the hint tier).</summary>
    Fresh,
}

/// <summary>What became of a scatterlist handed to a device; it decides how the blocks go back.</summary>
internal enum ReportOutcome
{
    /// <summary>Nothing is known of the memory any more: back unreported, without zero or poison promises.</summary>
    Failed,
    /// <summary>Back at the tail of their lists, marked Reported.</summary>
    Reported,
    /// <summary>Reported, and known to read as zero (MADV_DONTNEED on private anonymous memory).</summary>
    ReportedZeroed,
    /// <summary>Offered to the OS (MADV_FREE): back in the hinted run, reading as before or as zero, so with no promise.</summary>
    Hinted,
}

/// <summary>What one <see cref="BuddyArena.ReportFreeBlocks"/> call handed over, and how it went.</summary>
internal readonly record struct ReportedBatch(int Blocks, long Bytes, ReportOutcome Outcome);

/// <summary>Reports one scatterlist of isolated free blocks; called outside every zone lock.</summary>
internal delegate ReportOutcome ReportScatterlist(ReadOnlySpan<FreeBlock> blocks);

/// <summary>Told, outside any lock, that a free block of at least the subscribed order appeared. Must not throw.</summary>
internal interface IFreeBlockListener
{
    void OnFreeBlock(int zone, int order);
}
