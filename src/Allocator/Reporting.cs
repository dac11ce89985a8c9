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

/// <summary>Told, outside any lock, that a free block of at least the subscribed order appeared.</summary>
public interface IFreeBlockListener
{
    void OnFreeBlock(int zone, int order);
}
