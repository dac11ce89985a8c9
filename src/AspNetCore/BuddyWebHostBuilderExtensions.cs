using Buddy;
using Buddy.AspNetCore;
using Buddy.Hosting;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

// Beside UseKestrel, where a web host's builder looks for its extensions.
namespace Microsoft.AspNetCore.Hosting;

/// <summary>Gives Kestrel its buffers from a Buddy arena.</summary>
public static class BuddyWebHostBuilderExtensions
{
    /// <summary>
    /// Kestrel's connection buffers come from the Buddy arena (<see cref="BuddyServiceCollectionExtensions.AddBuddy"/>,
    /// configured from the <c>Buddy</c> section and then <paramref name="configure"/>), whose free memory
    /// the page reporter hands back to the OS. Wins over Kestrel's own pool whether it is called before
    /// or after UseKestrel; the arena must be <see cref="ArenaBacking.PinnedArray"/> (the default here),
    /// since the socket transport needs array-backed buffers. At start, an error is logged if Kestrel's
    /// sockets would not rent from Buddy.
    /// </summary>
    public static IWebHostBuilder UseBuddyMemoryPool(this IWebHostBuilder builder, Action<BuddyOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.ConfigureServices(services =>
        {
            services.AddBuddy(configure);
            if (services.Any(d => d.ServiceType == typeof(BuddyMemoryPoolFactory))) return;
            services.AddSingleton(provider => new BuddyMemoryPoolFactory(provider.GetRequiredService<BuddyArena>()));
            // Anyone else resolving the factory gets Buddy's too; the transport is set by KestrelTransportPool.
            services.RemoveAll<IMemoryPoolFactory<byte>>();
            services.AddSingleton<IMemoryPoolFactory<byte>>(provider => provider.GetRequiredService<BuddyMemoryPoolFactory>());
            services.AddSingleton<IPostConfigureOptions<SocketTransportOptions>, KestrelTransportPool>();
            services.AddSingleton<IValidateOptions<BuddyOptions>, KestrelArenaValidator>();
            services.AddSingleton<KestrelPoolCheck>();
            services.AddHostedService(provider => provider.GetRequiredService<KestrelPoolCheck>());
        });
    }
}
