using System.Runtime.InteropServices;

namespace Buddy.Interop;

internal static unsafe partial class Libc
{
    [LibraryImport(Library, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);
}
