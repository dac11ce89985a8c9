using System.Runtime.InteropServices;

namespace Buddy.Interop;

internal static unsafe partial class Kernel32
{
    [LibraryImport(Library, EntryPoint = "K32GetProcessMemoryInfo", SetLastError = true)]
    [return: MarshalAs(UnmanagedType.Bool)]
    public static partial bool GetProcessMemoryInfo(nint process, ProcessMemoryCounters* counters, uint size);
}
