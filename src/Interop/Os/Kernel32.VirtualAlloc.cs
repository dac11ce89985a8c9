using System.Runtime.InteropServices;

namespace Buddy.Interop;

internal static unsafe partial class Kernel32
{
    [LibraryImport(Library, SetLastError = true)]
    public static partial nint VirtualAlloc(nint address, nuint size, MemoryOperation allocationType, PageProtection protect);
}
