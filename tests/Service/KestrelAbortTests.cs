using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Buddy.AspNetCore;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Buddy.Tests.Service;

/// <summary>
/// Clients that reset their connection in the middle of a chunked upload: Kestrel drops some of the
/// pipe's buffers without returning them, and the pool must get them back all the same.
/// </summary>
public sealed class KestrelAbortTests
{
    private const int Uploads = 48;
    private const int AtOnce = 8;

    [Fact]
    public async Task Uploads_reset_mid_body_leave_nothing_rented_once_the_GC_has_run()
    {
        long abandoned = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "buddy.pool.abandoned") l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref abandoned, value));
        listener.Start();

        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Buddy:Arena:Size"] = "33554432",
            ["Buddy:Arena:SectionSize"] = "33554432",
            ["Buddy:Arena:MaximumSize"] = "268435456",
            ["Buddy:ReporterEnabled"] = "false",
        });
        builder.WebHost.UseKestrelCore();
        builder.WebHost.UseBuddyMemoryPool();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        int handlersRunning = 0, handlersFailed = 0, bodiesStarted = 0;
        await using WebApplication app = builder.Build();
        app.Run(async context =>
        {
            Interlocked.Increment(ref handlersRunning);
            try
            {
                // Reads the body as it arrives, as any upload handler does.
                var buffer = new byte[16 << 10];
                long total = 0;
                int read;
                while ((read = await context.Request.Body.ReadAsync(buffer, context.RequestAborted)) > 0)
                    if ((total += read) >= 64 << 10 && total - read < 64 << 10) Interlocked.Increment(ref bodiesStarted);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or BadHttpRequestException)
            {
                Interlocked.Increment(ref handlersFailed);
            }
            finally
            {
                Interlocked.Decrement(ref handlersRunning);
            }
        });
        await app.StartAsync(TestContext.Current.CancellationToken);
        var address = new Uri(app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First());
        BuddyArena arena = app.Services.GetRequiredService<BuddyArena>();
        long idle = arena.GetStatistics().AllocatedBytes;

        for (int round = 0; round < Uploads / AtOnce; round++)
        {
            int startedBefore = Volatile.Read(ref bodiesStarted);
            Socket[] sockets = await Task.WhenAll(Enumerable.Range(0, AtOnce).Select(_ => StartUploadAsync(address)));
            // Half the rounds reset once every handler holds part of its body, half while the bodies are still arriving.
            if (round % 2 == 0) Wait.Until(() => Volatile.Read(ref bodiesStarted) >= startedBefore + AtOnce, "the handlers to read part of each body");
            foreach (Socket socket in sockets) Reset(socket);
        }
        Wait.Until(() => Volatile.Read(ref handlersRunning) == 0, "every upload handler to return");

        // Kestrel holds nothing for closed connections: what stays rented was dropped, and the GC finds it.
        Wait.Until(() =>
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            return arena.GetStatistics().AllocatedBytes <= idle;
        }, "the arena to come back to what it held before the uploads", seconds: 20);
        Assert.True(handlersFailed > 0, "the resets reached the handlers mid-body");
        Assert.Equal(idle, arena.GetStatistics().AllocatedBytes);
        listener.RecordObservableInstruments();
        Assert.Equal(app.Services.GetRequiredService<BuddyMemoryPool>().AbandonedBlocks, Interlocked.Read(ref abandoned));
        await app.StopAsync(TestContext.Current.CancellationToken);
    }

    /// <summary>Sends the headers and 256 KiB and a half of a chunked upload, leaving a chunk unfinished.</summary>
    private static async Task<Socket> StartUploadAsync(Uri address)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, address.Port), TestContext.Current.CancellationToken);
        await socket.SendAsync(Encoding.ASCII.GetBytes(
            $"POST /upload HTTP/1.1\r\nHost: {address.Authority}\r\nTransfer-Encoding: chunked\r\n\r\n"), TestContext.Current.CancellationToken);
        byte[] chunk = [.. Encoding.ASCII.GetBytes("8000\r\n"), .. new byte[0x8000], .. "\r\n"u8];
        for (int i = 0; i < 8; i++) await socket.SendAsync(chunk, TestContext.Current.CancellationToken);
        await socket.SendAsync(chunk.AsMemory(0, 0x4000), TestContext.Current.CancellationToken);
        return socket;
    }

    /// <summary>Closes with RST, not FIN: the server's next read fails.</summary>
    private static void Reset(Socket socket)
    {
        socket.LingerState = new LingerOption(true, 0);
        socket.Close();
    }
}
