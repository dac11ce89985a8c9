using System.Runtime.InteropServices;

namespace Buddy.Interop;

internal static unsafe partial class Libc
{
    [LibraryImport(Library, EntryPoint = "getpid")]
    public static partial int GetPid();
}
