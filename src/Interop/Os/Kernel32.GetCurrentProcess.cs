using System.Runtime.InteropServices;

namespace Buddy.Interop;

internal static unsafe partial class Kernel32
{
    [LibraryImport(Library)]
    public static partial nint GetCurrentProcess();
}
