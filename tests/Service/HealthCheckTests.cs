using Buddy.Reporting.FaultInjection;
using System.Net;
using Buddy.Reporting;
using Buddy.Reporting.Devices;
using Buddy.Reporting.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Buddy.Tests.Service;

/// <summary>AddHealthChecks().AddBuddy() through the real health-check endpoint on a loopback Kestrel.</summary>
public sealed class HealthCheckTests
{
    private static async Task<(WebApplication App, HttpClient Client)> StartAsync(IReportingDevice device)
    {
        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Buddy:Arena:Size"] = "16777216",
            ["Buddy:Arena:SectionSize"] = "16777216",
            ["Buddy:Arena:MaximumSize"] = "16777216",
            ["Buddy:Arena:Backing"] = "Reserve",
            ["Buddy:Reporter:Delay"] = "01:00:00",
            ["Buddy:Reporter:PressureSources"] = "None",
        });
        builder.WebHost.UseKestrelCore().UseUrls("http://127.0.0.1:0");
        builder.Services.AddRoutingCore();
        builder.Services.AddSingleton(device);
        builder.Services.AddBuddy();
        builder.Services.AddHealthChecks().AddBuddy();
        WebApplication app = builder.Build();
        app.MapHealthChecks("/health");
        await app.StartAsync(TestContext.Current.CancellationToken);
        string address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        return (app, new HttpClient { BaseAddress = new Uri(address) });
    }

    private static async Task<(HttpStatusCode Code, string Body)> HealthAsync(HttpClient client)
    {
        HttpResponseMessage response = await client.GetAsync("/health", TestContext.Current.CancellationToken);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task The_check_is_healthy_then_degraded_near_the_maximum_and_under_pressure_and_healthy_again()
    {
        (WebApplication app, HttpClient client) = await StartAsync(new NullReportingDevice());
        await using (app)
        using (client)
        {
            Assert.Equal((HttpStatusCode.OK, "Healthy"), await HealthAsync(client));

            BuddyArena arena = app.Services.GetRequiredService<BuddyArena>();
            nint[] blocks = [.. Enumerable.Range(0, 4).Select(_ => arena.Allocate(10))];
            Assert.Equal((HttpStatusCode.OK, "Degraded"), await HealthAsync(client));
            foreach (nint block in blocks) arena.Free(block);
            Assert.Equal((HttpStatusCode.OK, "Healthy"), await HealthAsync(client));

            app.Services.GetRequiredService<PageReporter>().SignalPressure();
            Assert.Equal((HttpStatusCode.OK, "Degraded"), await HealthAsync(client));
            // No signal since that check: pressure is over as far as the check can tell.
            Assert.Equal((HttpStatusCode.OK, "Healthy"), await HealthAsync(client));
            await app.StopAsync(TestContext.Current.CancellationToken);
        }
    }

    [Fact]
    public async Task Repeated_reporter_failures_make_the_check_unhealthy()
    {
        (WebApplication app, HttpClient client) = await StartAsync(new FailingDevice());
        await using (app)
        using (client)
        {
            BuddyArena arena = app.Services.GetRequiredService<BuddyArena>();
            PageReporter reporter = app.Services.GetRequiredService<PageReporter>();
            for (int failure = 1; failure <= 3; failure++)
            {
                Assert.Equal(HttpStatusCode.OK, (await HealthAsync(client)).Code);
                arena.Free(arena.Allocate(10)); // a free 4 MiB block for the device to refuse
                reporter.ReportNow();
                Assert.Equal(failure, reporter.GetStatistics().FailuresInARow);
            }
            Assert.Equal((HttpStatusCode.ServiceUnavailable, "Unhealthy"), await HealthAsync(client));
            await app.StopAsync(TestContext.Current.CancellationToken);
        }
    }
}
