using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Options;

namespace Buddy.AspNetCore;

/// <summary>
/// Points Kestrel's socket transport at the Buddy factory. Kestrel copies the registered
/// <see cref="IMemoryPoolFactory{T}"/> into <see cref="SocketTransportOptions"/> when it configures
/// them, and registers its own factory with an unconditional AddSingleton each time UseKestrel runs,
/// so a registration alone loses to a later UseKestrel. A post-configure step runs after every
/// configure step whatever the registration order; the property it sets is internal, hence the accessor.
/// </summary>
internal sealed class KestrelTransportPool(BuddyMemoryPoolFactory factory) : IPostConfigureOptions<SocketTransportOptions>
{
    public void PostConfigure(string? name, SocketTransportOptions options)
    {
        try
        {
            SetMemoryPoolFactory(options, factory);
        }
        catch (MissingMemberException)
        {
            // A Kestrel without the property: the startup check reports that Buddy is not in use.
        }
    }

    /// <summary>The factory the socket transport will use, or null when it cannot be read.</summary>
    internal static IMemoryPoolFactory<byte>? Read(SocketTransportOptions options)
    {
        try
        {
            return GetMemoryPoolFactory(options);
        }
        catch (MissingMemberException)
        {
            return null;
        }
    }

    [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "set_MemoryPoolFactory")]
    private static extern void SetMemoryPoolFactory(SocketTransportOptions options, IMemoryPoolFactory<byte> value);

    [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "get_MemoryPoolFactory")]
    private static extern IMemoryPoolFactory<byte> GetMemoryPoolFactory(SocketTransportOptions options);
}
