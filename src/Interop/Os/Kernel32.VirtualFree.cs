using System.Runtime.InteropServices;

namespace Buddy.Interop;

internal static unsafe partial class Kernel32
{
    [LibraryImport(Library, SetLastError = true)]
    [return: MarshalAs(UnmanagedType.Bool)]
    public static partial bool VirtualFree(nint address, nuint size, MemoryOperation freeType);
}
