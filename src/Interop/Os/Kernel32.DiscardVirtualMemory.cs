using System.Runtime.InteropServices;

namespace Buddy.Interop;

internal static unsafe partial class Kernel32
{
    /// <summary>Returns a Win32 error code; 0 is success.</summary>
    [LibraryImport(Library)]
    public static partial uint DiscardVirtualMemory(nint address, nuint size);
}
