using Buddy.Hosting;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Buddy.AspNetCore;

/// <summary>
/// At start, checks that the socket transport Kestrel listens with will rent from Buddy, and logs an
/// error naming what it will use instead when it would not.
/// </summary>
internal sealed class KestrelPoolCheck(IServiceProvider services, BuddyMemoryPoolFactory factory, ILogger<KestrelPoolCheck> logger) : IHostedService
{
    /// <summary>The factory Kestrel's sockets will use, as the check found it (null: unknown).</summary>
    internal IMemoryPoolFactory<byte>? TransportFactory { get; private set; }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var transport = services.GetService<IOptions<SocketTransportOptions>>();
        TransportFactory = transport is null ? null : KestrelTransportPool.Read(transport.Value);
        if (ReferenceEquals(TransportFactory, factory))
        {
            logger.LogInformation("Kestrel's socket transport rents from Buddy arena {Arena}", factory.Arena.Name);
        }
        else
        {
            logger.LogError("Kestrel will not use the Buddy memory pool: its socket transport's pool factory is {Factory}. "
                + "Its buffers will not come from arena {Arena} and their memory will not be reported.",
                TransportFactory?.GetType().FullName ?? "unknown (this Kestrel has no SocketTransportOptions.MemoryPoolFactory)",
                factory.Arena.Name);
        }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>Kestrel's sockets need array-backed buffers: only a PinnedArray arena gives them.</summary>
internal sealed class KestrelArenaValidator(BuddyRegistration registration) : IValidateOptions<BuddyOptions>
{
    public ValidateOptionsResult Validate(string? name, BuddyOptions options) =>
        options.Arena is null || options.Arena.Backing == ArenaBacking.PinnedArray
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail($"{registration.ConfigSectionPath}:Arena:Backing is {options.Arena.Backing}: Kestrel's socket transport needs array-backed buffers, so UseBuddyMemoryPool needs Backing PinnedArray.");
}
