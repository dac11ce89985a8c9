using System.Runtime.InteropServices;

namespace Buddy.Interop;

internal static unsafe partial class Libc
{
    [LibraryImport(Library, EntryPoint = "munmap", SetLastError = true)]
    public static partial int Munmap(nint address, nuint length);
}
