using System.Runtime.InteropServices;

namespace Buddy.Interop;

internal static unsafe partial class Libc
{
    [LibraryImport(Library, EntryPoint = "mincore", SetLastError = true)]
    public static partial int Mincore(nint address, nuint length, byte* vector);
}
