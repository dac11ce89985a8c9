using System.Buffers;
using System.Runtime.InteropServices;
using Buddy.Interop;
using Buddy.Reporting;
using Buddy.Reporting.Devices;

namespace Buddy.Harness;

/// <summary>An allocator measured side by side with Buddy.</summary>
public interface IPeer : IDisposable
{
    string Name { get; }
    nint Allocate(nuint bytes);
    void Free(nint block, nuint bytes);
}

public static class Peers
{
    public static readonly string[] Names = ["buddy", "glibc", "jemalloc", "mimalloc", "tcmalloc", "arraypool", "mmap"];

    /// <summary>Set in a child whose malloc is a preloaded library.</summary>
    public const string PreloadVariable = "BUDDY_HARNESS_PRELOADED";

    /// <summary>Peers that must be preloaded into a child process rather than loaded in-process.</summary>
    public static readonly Dictionary<string, string> Preloaded = new() { ["jemalloc"] = "libjemalloc.so.2" };

    /// <summary>Creates a peer, or returns null with the reason it is missing.</summary>
    public static IPeer? TryCreate(string name, TimeSpan reportDelay, out string? missing)
    {
        missing = null;
        switch (name)
        {
            case "buddy": return new BuddyPeer(reportDelay);
            case "glibc": return new GlibcPeer();
            case "arraypool": return new ArrayPoolPeer();
            case "mmap": return new MmapPeer();
            // jemalloc uses initial-exec TLS and cannot be dlopen'ed: it runs as the process's malloc through LD_PRELOAD.
            case "jemalloc" when Environment.GetEnvironmentVariable(PreloadVariable) == "jemalloc": return new GlibcPeer("jemalloc");
            case "jemalloc": return LibraryPeer.TryLoad(name, "libjemalloc.so.2", "malloc", "free", out missing);
            case "mimalloc": return LibraryPeer.TryLoad(name, "libmimalloc.so.2", "mi_malloc", "mi_free", out missing);
            case "tcmalloc": return LibraryPeer.TryLoad(name, "libtcmalloc_minimal.so.4", "tc_malloc", "tc_free", out missing);
            default:
                missing = $"unknown peer '{name}'";
                return null;
        }
    }
}

/// <summary>Buddy in a reserved arena with a page reporter running, as a service would use it.</summary>
public sealed class BuddyPeer : IPeer
{
    private readonly BuddyArena arena = new(new ArenaOptions { Name = "harness", Size = 8L << 30, Backing = ArenaBacking.Reserve });
    private readonly MadviseDontNeedDevice device = new();
    private readonly PageReporter reporter;

    public BuddyPeer(TimeSpan reportDelay)
    {
        reporter = new PageReporter(arena, device, new PageReporterOptions { Delay = reportDelay });
        reporter.Start();
    }

    public string Name => "buddy";
    public nint Allocate(nuint bytes) => arena.AllocateBytes((long)bytes);
    public void Free(nint block, nuint bytes) => arena.Free(block);

    public void Dispose()
    {
        reporter.Dispose();
        device.Dispose();
        arena.Dispose();
    }
}

/// <summary>The process's malloc: glibc, or a library preloaded in its place.</summary>
public sealed unsafe class GlibcPeer(string name = "glibc") : IPeer
{
    public string Name => name;
    public nint Allocate(nuint bytes) => (nint)NativeMemory.Alloc(bytes);
    public void Free(nint block, nuint bytes) => NativeMemory.Free((void*)block);
    public void Dispose() { }
}

/// <summary>A Debian allocator library called through its own exports (dlopen, no interposition).</summary>
public sealed unsafe class LibraryPeer : IPeer
{
    private readonly nint library;
    private readonly delegate* unmanaged<nuint, nint> malloc;
    private readonly delegate* unmanaged<nint, void> free;

    private LibraryPeer(string name, nint library, nint malloc, nint free)
    {
        Name = name;
        this.library = library;
        this.malloc = (delegate* unmanaged<nuint, nint>)malloc;
        this.free = (delegate* unmanaged<nint, void>)free;
    }

    public static LibraryPeer? TryLoad(string name, string file, string mallocName, string freeName, out string? missing)
    {
        missing = null;
        nint library;
        try
        {
            library = NativeLibrary.Load(file);
        }
        catch (DllNotFoundException e)
        {
            missing = $"{file} cannot be loaded ({e.Message.Split('\n')[0]}); scripts/bench.sh installs the Debian package";
            return null;
        }
        if (!NativeLibrary.TryGetExport(library, mallocName, out nint malloc) || !NativeLibrary.TryGetExport(library, freeName, out nint free))
        {
            missing = $"{file} exports no {mallocName}/{freeName}";
            return null;
        }
        return new LibraryPeer(name, library, malloc, free);
    }

    public string Name { get; }
    public nint Allocate(nuint bytes) => malloc(bytes);
    public void Free(nint block, nuint bytes) => free(block);
    public void Dispose() { }
}

/// <summary>ArrayPool&lt;byte&gt;.Shared: pooled managed arrays, pinned while in use.</summary>
public sealed class ArrayPoolPeer : IPeer
{
    private readonly Dictionary<nint, (byte[] Array, GCHandle Pin)> rented = [];

    public string Name => "arraypool";

    public nint Allocate(nuint bytes)
    {
        byte[] array = ArrayPool<byte>.Shared.Rent((int)bytes);
        GCHandle pin = GCHandle.Alloc(array, GCHandleType.Pinned);
        nint address = pin.AddrOfPinnedObject();
        rented[address] = (array, pin);
        return address;
    }

    public void Free(nint block, nuint bytes)
    {
        (byte[] array, GCHandle pin) = rented[block];
        rented.Remove(block);
        pin.Free();
        ArrayPool<byte>.Shared.Return(array);
    }

    public void Dispose() { }
}

/// <summary>Raw mmap/munmap per block.</summary>
public sealed class MmapPeer : IPeer
{
    private readonly Dictionary<nint, Mapping> mappings = [];

    public string Name => "mmap";

    public nint Allocate(nuint bytes)
    {
        Mapping mapping = VirtualMemory.Map(bytes, (nuint)VirtualMemory.PageSize);
        mappings[mapping.Base] = mapping;
        return mapping.Base;
    }

    public void Free(nint block, nuint bytes)
    {
        VirtualMemory.Unmap(mappings[block]);
        mappings.Remove(block);
    }

    public void Dispose() { }
}
