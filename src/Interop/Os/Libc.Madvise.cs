using System.Runtime.InteropServices;

namespace Buddy.Interop;

internal static unsafe partial class Libc
{
    [LibraryImport(Library, EntryPoint = "madvise", SetLastError = true)]
    public static partial int Madvise(nint address, nuint length, Advice advice);
}
