using System.Buffers;
using System.Diagnostics.Metrics;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using Buddy.AspNetCore;
using Buddy.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;

namespace Buddy.Tests.Service;

/// <summary>Kestrel on a real loopback socket with its buffers from Buddy.</summary>
public sealed class KestrelTests
{
    private const int OneMiB = 1 << 20;

    private static readonly Dictionary<string, string?> SmallArena = new()
    {
        ["Buddy:Arena:Size"] = "16777216",
        ["Buddy:Arena:SectionSize"] = "16777216",
        ["Buddy:Arena:MaximumSize"] = "134217728",
    };

    private static byte Pattern(long i) => (byte)(i % 251);

    private static byte[] PatternBytes(int length)
    {
        var bytes = new byte[length];
        for (int i = 0; i < length; i++) bytes[i] = Pattern(i);
        return bytes;
    }

    /// <summary>A web app on 127.0.0.1:0 with the two endpoints the tests drive; <paramref name="setup"/> picks the pool.</summary>
    private static async Task<(WebApplication App, Uri Address, FakeLogCollector Logs)> StartAsync(Action<WebApplicationBuilder> setup, Dictionary<string, string?>? settings = null)
    {
        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Configuration.AddInMemoryCollection(settings ?? SmallArena);
        var logs = new FakeLogCollector();
        builder.Logging.AddProvider(new FakeLoggerProvider(logs));
        builder.WebHost.UseKestrelCore();
        builder.Services.AddRoutingCore();
        setup(builder);
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        WebApplication app = builder.Build();
        app.UseRouting();
        app.MapGet("/bytes/{length:int}", WriteBytes);
        app.MapPost("/upload", (HttpRequest request) => ReadUpload(request));
        await app.StartAsync(TestContext.Current.CancellationToken);
        string address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        return (app, new Uri(address), logs);
    }

    private static async Task WriteBytes(HttpContext context, int length)
    {
        context.Response.ContentLength = length;
        PipeWriter writer = context.Response.BodyWriter;
        for (int written = 0; written < length;)
        {
            Span<byte> span = writer.GetSpan(4096);
            int count = Math.Min(span.Length, length - written);
            for (int i = 0; i < count; i++) span[i] = Pattern(written + i);
            writer.Advance(count);
            written += count;
        }
        await writer.FlushAsync(context.RequestAborted);
    }

    /// <summary>Holds the whole body in Kestrel's pipe (pool memory) before checking it.</summary>
    private static async Task<string> ReadUpload(HttpRequest request)
    {
        PipeReader reader = request.BodyReader;
        while (true)
        {
            ReadResult result = await reader.ReadAsync(request.HttpContext.RequestAborted);
            if (!result.IsCompleted)
            {
                reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                continue;
            }
            long position = 0;
            bool intact = true;
            foreach (ReadOnlyMemory<byte> segment in result.Buffer)
            {
                for (int i = 0; i < segment.Length; i++) intact &= segment.Span[i] == Pattern(position + i);
                position += segment.Length;
            }
            int segments = 0;
            foreach (ReadOnlyMemory<byte> _ in result.Buffer) segments++;
            reader.AdvanceTo(result.Buffer.End);
            return $"{position} {intact} {segments}";
        }
    }

    [Fact]
    public async Task A_1_MiB_response_and_a_1_MiB_upload_go_through_Buddy_buffers()
    {
        var rentsByOwner = new Dictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "buddy.pool.rents") l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (KeyValuePair<string, object?> tag in tags)
                if (tag.Key == ArenaMetrics.PoolOwnerTag)
                    lock (rentsByOwner) rentsByOwner[tag.Value as string ?? ""] = rentsByOwner.GetValueOrDefault(tag.Value as string ?? "") + value;
        });
        listener.Start();
        (WebApplication app, Uri address, _) = await StartAsync(b => b.WebHost.UseBuddyMemoryPool());
        await using (app)
        {
            BuddyArena arena = app.Services.GetRequiredService<BuddyArena>();
            long allocationsBefore = arena.GetStatistics().Allocations;
            using var client = new HttpClient { BaseAddress = address };

            byte[] response = await client.GetByteArrayAsync($"/bytes/{OneMiB}", TestContext.Current.CancellationToken);
            using var upload = new ByteArrayContent(PatternBytes(OneMiB));
            HttpResponseMessage answer = await client.PostAsync("/upload", upload, TestContext.Current.CancellationToken);

            Assert.Equal(PatternBytes(OneMiB), response);
            string[] uploaded = (await answer.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).Split(' ');
            Assert.Equal([OneMiB.ToString(), "True"], uploaded[..2]);
            Assert.True(int.Parse(uploaded[2]) > 1, "the upload spans many pool blocks");
            // Kestrel buffered the whole upload in blocks of this arena: at least 1 MiB of 4 KiB rents.
            Assert.True(arena.GetStatistics().Allocations - allocationsBefore >= OneMiB / 4096);
            Assert.True(app.Services.GetRequiredService<BuddyMemoryPoolFactory>().PoolsCreated > 0);
            listener.RecordObservableInstruments();
            lock (rentsByOwner) Assert.True(rentsByOwner.GetValueOrDefault("kestrel") >= OneMiB / 4096);
            await app.StopAsync(TestContext.Current.CancellationToken);
        }
    }

    [Fact]
    public async Task Native_memory_under_Kestrel_fails_as_it_once_did_and_UseBuddyMemoryPool_refuses_it_at_start()
    {
        // The failure this guards against: a pool over native memory, given to Kestrel's sockets.
        using var native = new BuddyArena(new ArenaOptions { Size = 16 * Arenas.MiB, Backing = ArenaBacking.Reserve });
        (WebApplication app, Uri address, FakeLogCollector logs) = await StartAsync(b => b.Services.AddSingleton<IMemoryPoolFactory<byte>>(new BuddyMemoryPoolFactory(native)));
        await using (app)
        {
            using var client = new HttpClient { BaseAddress = address };
            await Assert.ThrowsAnyAsync<Exception>(() => client.GetByteArrayAsync($"/bytes/{OneMiB}", TestContext.Current.CancellationToken));
            // The server logs the send's failure as the connection goes down, which may be after the client sees it.
            Wait.Until(() => logs.GetSnapshot().Any(r => r.Exception?.Message.Contains("Buffer backed by array was expected") == true),
                "Kestrel to log the array-backed buffer failure");
            await app.StopAsync(TestContext.Current.CancellationToken);
        }

        // UseBuddyMemoryPool will not start on such an arena, and says why.
        var settings = new Dictionary<string, string?>(SmallArena) { ["Buddy:Arena:Backing"] = "Reserve" };
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => StartAsync(b => b.WebHost.UseBuddyMemoryPool(), settings));
        Assert.Contains("Buddy:Arena:Backing is Reserve: Kestrel's socket transport needs array-backed buffers", e.Message);
    }

    [Fact]
    public async Task UseBuddyMemoryPool_wins_over_a_later_UseKestrel()
    {
        (WebApplication app, Uri address, FakeLogCollector logs) = await StartAsync(b =>
        {
            b.WebHost.UseBuddyMemoryPool();
            // Registers Kestrel's own pool factory again, after Buddy's.
            b.WebHost.UseKestrel();
        });
        await using (app)
        {
            using var client = new HttpClient { BaseAddress = address };
            Assert.Equal(PatternBytes(OneMiB), await client.GetByteArrayAsync($"/bytes/{OneMiB}", TestContext.Current.CancellationToken));
            Assert.True(app.Services.GetRequiredService<BuddyMemoryPoolFactory>().PoolsCreated > 0);
            Assert.Contains(logs.GetSnapshot(), r => r.Level == LogLevel.Information && r.Message.Contains("Kestrel's socket transport rents from Buddy"));
            Assert.DoesNotContain(logs.GetSnapshot(), r => r.Level >= LogLevel.Error);
            await app.StopAsync(TestContext.Current.CancellationToken);
        }
    }

    [Fact]
    public async Task UseBuddyMemoryPool_wins_in_a_generic_host_whatever_the_order()
    {
        foreach (bool buddyFirst in new[] { true, false })
        {
            using IHost host = new HostBuilder()
                .ConfigureAppConfiguration(c => c.AddInMemoryCollection(SmallArena))
                .ConfigureWebHost(web =>
                {
                    if (buddyFirst) web.UseBuddyMemoryPool();
                    web.UseKestrel().UseUrls("http://127.0.0.1:0");
                    if (!buddyFirst) web.UseBuddyMemoryPool();
                    web.Configure(app => app.Run(context => WriteBytes(context, OneMiB)));
                })
                .Build();
            await host.StartAsync(TestContext.Current.CancellationToken);
            string address = host.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
            using var client = new HttpClient();

            Assert.Equal(PatternBytes(OneMiB), await client.GetByteArrayAsync(address, TestContext.Current.CancellationToken));
            Assert.True(host.Services.GetRequiredService<BuddyMemoryPoolFactory>().PoolsCreated > 0, $"Buddy first: {buddyFirst}");
            // A later UseKestrel registers its factory again: the transport rents from Buddy all the same.
            if (!buddyFirst) Assert.IsType<BuddyMemoryPoolFactory>(host.Services.GetRequiredService<IMemoryPoolFactory<byte>>());
            await host.StopAsync(TestContext.Current.CancellationToken);
        }
    }

    [Fact]
    public async Task The_startup_check_logs_an_error_when_Kestrel_would_not_use_Buddy()
    {
        (WebApplication app, _, FakeLogCollector logs) = await StartAsync(b =>
        {
            b.WebHost.UseBuddyMemoryPool();
            // Stands for anything that hands the transport another pool after Buddy has.
            b.Services.AddSingleton<IPostConfigureOptions<SocketTransportOptions>, SharedPoolForSockets>();
        });
        await using (app)
        {
            FakeLogRecord error = Assert.Single(logs.GetSnapshot(), r => r.Level == LogLevel.Error);
            Assert.Contains("Kestrel will not use the Buddy memory pool", error.Message);
            Assert.Contains(nameof(SharedPoolForSockets), error.Message);
            Assert.Equal(0, app.Services.GetRequiredService<BuddyMemoryPoolFactory>().PoolsCreated);
            await app.StopAsync(TestContext.Current.CancellationToken);
        }
    }

    private sealed class SharedPoolForSockets : IPostConfigureOptions<SocketTransportOptions>, IMemoryPoolFactory<byte>
    {
        public MemoryPool<byte> Create(MemoryPoolOptions? options = null) => MemoryPool<byte>.Shared;

        public void PostConfigure(string? name, SocketTransportOptions options) => SetFactory(options, this);

        [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "set_MemoryPoolFactory")]
        private static extern void SetFactory(SocketTransportOptions options, IMemoryPoolFactory<byte> value);
    }
}
